//! `save`, `load`, `import`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use super::{CommandError, Env, out_err};
use crate::archive::{Loaded, SaveFormat};
use crate::import::ImportOptions;
use crate::reference::ImageRef;

fn io<'a>(op: &'static str, what: &'a Path) -> impl FnOnce(std::io::Error) -> CommandError + 'a {
    move |source| CommandError::Io {
        op,
        what: what.display().to_string(),
        source,
    }
}

/// `bay save [-o FILE] [--format docker|oci] IMAGE…`; without `-o`, to stdout (not a terminal).
pub fn save(
    env: &Env,
    names: &[String],
    output: Option<&Path>,
    format: SaveFormat,
) -> Result<(), CommandError> {
    let store = env.store()?;
    match output {
        Some(p) => {
            // Write next to the target and rename, so a failure leaves no partial archive.
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("create a file in", dir))?;
            let f = tmp.reopen().map_err(io("open", tmp.path()))?;
            crate::archive::save(
                &store,
                names,
                format,
                std::io::BufWriter::with_capacity(1 << 20, f),
                p,
            )?;
            tmp.persist(p).map_err(|e| io("write", p)(e.error))?;
            Ok(())
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                return Err(CommandError::RefuseTerminal);
            }
            crate::archive::save(
                &store,
                names,
                format,
                std::io::BufWriter::new(stdout.lock()),
                Path::new("stdout"),
            )?;
            Ok(())
        }
    }
}

/// `bay load [-i FILE] [-q]`; without `-i`, from stdin (spooled to a temp file, as the tar is read by offset).
pub fn load(env: &Env, input: Option<&Path>, out: &mut dyn Write) -> Result<(), CommandError> {
    let store = env.store()?;
    let loaded = match input {
        Some(p) => crate::archive::load(&store, p)?,
        None => {
            let tmpdir = store.layout().tmp();
            let mut tmp = tempfile::NamedTempFile::new_in(&tmpdir)
                .map_err(io("create a file in", &tmpdir))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut tmp)
                .map_err(io("read", Path::new("stdin")))?;
            crate::archive::load(&store, tmp.path())?
        }
    };
    for l in loaded {
        match l {
            Loaded::Tagged(n) => writeln!(out, "Loaded image: {n}"),
            Loaded::Id(d) => writeln!(out, "Loaded image ID: {d}"),
        }
        .map_err(out_err)?;
    }
    Ok(())
}

/// `bay import [-c CHANGE] [-m MSG] [--platform P] FILE|- [REPOSITORY[:TAG]]`; prints the image ID.
pub fn import(
    env: &Env,
    source: &str,
    reference: Option<&str>,
    opts: &ImportOptions,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let r = reference.map(ImageRef::parse).transpose()?;
    if r.as_ref().is_some_and(|r| r.digest().is_some()) {
        return Err(CommandError::TagDigest);
    }
    let store = env.store()?;
    let id = if source == "-" {
        crate::import::import(&store, std::io::stdin().lock(), "-", r.as_ref(), opts)?
    } else {
        let p = Path::new(source);
        let f = std::fs::File::open(p).map_err(io("open", p))?;
        let reader: Box<dyn Read> = Box::new(f);
        crate::import::import(&store, reader, source, r.as_ref(), opts)?
    };
    writeln!(out, "{id}").map_err(out_err)
}
