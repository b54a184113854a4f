//! Terminal helpers for `-t`: window sizes (`TIOCGWINSZ`/`TIOCSWINSZ`, the
//! ioctls nix wraps only as unsafe macros) and raw mode for the user's
//! terminal while a container owns it.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

pub use nix::pty::Winsize;

/// The window size of the terminal `fd`, if it is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer, which
    // points to a live, properly laid out value (nix's Winsize is libc's).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &raw mut ws) };
    (r == 0).then_some(ws)
}

/// Sets the window size of the terminal `fd` (a pty master: the
/// container's side then gets SIGWINCH).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &Winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from a valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, std::ptr::from_ref(ws)) };
    nix::errno::Errno::result(r).map(drop)
}

/// The user's terminal in raw mode until dropped (then restored), so keys
/// such as Ctrl-C reach the container's terminal instead of bay.
#[derive(Debug)]
pub struct RawMode {
    fd: std::os::fd::OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Puts terminal `fd` in raw mode.
    pub fn enter(fd: BorrowedFd<'_>) -> nix::Result<Self> {
        use nix::sys::termios;
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))?;
        let saved = termios::tcgetattr(&fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, termios::SetArg::TCSANOW, &raw)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn window_sizes_round_trip_through_a_pty() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let ws = Winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        set_winsize(pty.master.as_fd(), &ws).unwrap();
        let got = winsize(pty.slave.as_fd()).unwrap();
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
        let raw = RawMode::enter(pty.slave.as_fd()).unwrap();
        let t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        assert!(!t.local_flags.contains(nix::sys::termios::LocalFlags::ECHO));
        drop(raw);
        let t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        assert!(t.local_flags.contains(nix::sys::termios::LocalFlags::ECHO));
        assert!(winsize(std::fs::File::open("/dev/null").unwrap().as_fd()).is_none());
    }
}
