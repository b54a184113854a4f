//! `-u` resolution against the image's `/etc/passwd` and `/etc/group`,
//! read from the layer directories without following any symlink out of a
//! layer (a hostile image could point `/etc/passwd` at the host's).

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use super::SpecError;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads `etc/<file>` from the topmost layer that has it (a whiteout or an
/// escaping symlink counts as "absent").
fn read_image_file(layers: &[PathBuf], file: &str) -> Option<String> {
    for layer in layers {
        let Ok(dir) = std::fs::File::open(layer) else {
            continue;
        };
        let rel = Path::new("etc").join(file);
        match crate::fsutil::open_beneath(dir.as_fd(), &rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
            Ok(fd) => {
                let mut s = String::new();
                let mut f = std::fs::File::from(fd);
                if f.metadata().map(|m| m.is_file()).unwrap_or(false) {
                    let _ = f.by_ref().take(4 << 20).read_to_string(&mut s);
                    return Some(s);
                }
                return None;
            }
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn passwd(layers: &[PathBuf]) -> Vec<Passwd> {
    read_image_file(layers, "passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Passwd {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_owned(),
            })
        })
        .collect()
}

fn groups(layers: &[PathBuf]) -> Vec<Group> {
    read_image_file(layers, "group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Group {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// Resolves `user[:group]` (names or numbers) as docker does.
pub fn resolve(spec: Option<&str>, layers: &[PathBuf]) -> Result<ResolvedUser, SpecError> {
    let (user, group) = match spec {
        None => ("0", None),
        Some(s) => match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        },
    };
    let users = passwd(layers);
    let entry =
        match user.parse::<u32>() {
            Ok(uid) => users.iter().find(|p| p.uid == uid),
            Err(_) => Some(users.iter().find(|p| p.name == user).ok_or_else(|| {
                SpecError::UnknownUser {
                    name: user.to_owned(),
                }
            })?),
        };
    let uid = match entry {
        Some(e) => e.uid,
        None => user.parse::<u32>().map_err(|_| SpecError::UnknownUser {
            name: user.to_owned(),
        })?,
    };
    let all_groups = groups(layers);
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => all_groups
                .iter()
                .find(|gr| gr.name == g)
                .map(|gr| gr.gid)
                .ok_or_else(|| SpecError::UnknownGroup { name: g.to_owned() })?,
        },
        None => entry.map_or(0, |e| e.gid),
    };
    let additional_gids = match entry {
        Some(e) if group.is_none() => {
            let mut v: Vec<u32> = all_groups
                .iter()
                .filter(|g| g.members.contains(&e.name) && g.gid != gid)
                .map(|g| g.gid)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        }
        _ => Vec::new(),
    };
    let home = match entry {
        Some(e) if !e.home.is_empty() => e.home.clone(),
        _ if uid == 0 => "/root".to_owned(),
        _ => "/".to_owned(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}
