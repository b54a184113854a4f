//! Docker-style progress: one line per layer on a terminal, only the summary
//! lines in scripts, nothing but the result with `-q`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A terminal: live per-layer bars.
    Tty,
    /// Not a terminal: summary lines only.
    Plain,
    /// `-q`: nothing but the final result.
    Quiet,
}

/// Progress output for one pull/push.
pub struct Progress {
    mode: ProgressMode,
    multi: Mutex<Option<MultiProgress>>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress writing summary lines to `out` (bars, on a TTY, go to stdout).
    pub fn new(mode: ProgressMode, out: Box<dyn Write + Send>) -> Self {
        Progress {
            mode,
            multi: Mutex::new(None),
            out: Mutex::new(out),
        }
    }

    /// The mode.
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// A summary line ("Digest: …"), shown unless quiet.
    pub fn line(&self, s: &str) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        self.result(s);
    }

    /// A result line, shown even when quiet (the pulled reference).
    pub fn result(&self, s: &str) {
        if let Ok(guard) = self.multi.lock()
            && let Some(m) = guard.as_ref()
        {
            let _ = m.println(s);
            return;
        }
        if let Ok(mut o) = self.out.lock() {
            let _ = writeln!(o, "{s}");
            let _ = o.flush();
        }
    }

    /// A per-layer line `<short id>: <status>`, live on a TTY only.
    pub fn layer(&self, short_id: &str, total: u64, status: &str) -> LayerProgress {
        // The live area starts with the first layer, so earlier lines print plainly.
        let mut guard = self.multi.lock().ok();
        if self.mode == ProgressMode::Tty
            && let Some(g) = guard.as_mut().filter(|g| g.is_none())
        {
            **g = Some(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        }
        let bar = guard.as_ref().and_then(|g| g.as_ref()).map(|m| {
            let pb = m.add(ProgressBar::new(total));
            let style =
                ProgressStyle::with_template("{prefix}: {msg} {wide_bar} {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            pb.set_style(style);
            pb.set_prefix(short_id.to_owned());
            pb.set_message(status.to_owned());
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        LayerProgress { bar }
    }

    /// Ends the live area: the finished layer lines stay on screen and later
    /// lines ("Digest: …") are printed below them, as docker does.
    pub fn done(&self) {
        let had_bars = self.multi.lock().ok().and_then(|mut g| g.take()).is_some();
        if had_bars {
            // indicatif leaves the cursor at the end of the last bar line.
            if let Ok(mut o) = self.out.lock() {
                let _ = writeln!(o);
            }
        }
    }
}

/// One layer's line (cheap to clone: clones update the same line).
#[derive(Debug, Clone)]
pub struct LayerProgress {
    bar: Option<ProgressBar>,
}

impl LayerProgress {
    /// Sets the status text ("Downloading", "Pushing").
    pub fn status(&self, s: &str) {
        if let Some(b) = &self.bar {
            b.set_message(s.to_owned());
        }
    }

    /// Adds bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Sets bytes done.
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    /// Ends the line with a final status ("Pull complete", "Layer already exists").
    pub fn finish(&self, s: &str) {
        if let Some(b) = &self.bar {
            b.set_style(
                ProgressStyle::with_template("{prefix}: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.finish_with_message(s.to_owned());
        }
    }
}
