//! The files of a Sparkplug edge node line with `store_path`: the core keeps the stored writes
//! and the bdSeq and says what changed (`Line::edge_files`); this shell reads them back at
//! start and writes them out. `<store_path>` holds the stored writes, `<store_path>.bdseq`
//! the bdSeq of the last connection (docs/sparkplug.md, "Store-and-forward").

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use mqtt_line_core::{Line, StoreFile};

fn bd_seq_path(store: &str) -> PathBuf {
    PathBuf::from(format!("{store}.bdseq"))
}

/// After `start`: the bdSeq and stored writes an earlier process left. A file that cannot be
/// read is warned about; the line starts with an empty store then.
pub fn load(line: &mut Line) {
    let Some(path) = line.edge_store_path().map(str::to_string) else {
        return;
    };
    let bd_seq = match fs::read_to_string(bd_seq_path(&path)) {
        Ok(text) => text.trim().parse::<u8>().ok(),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!("cannot read the bdSeq file of store_path '{path}': {e}");
            None
        }
    };
    let stored = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!("cannot read store_path '{path}': {e}; no stored writes are read");
            Vec::new()
        }
    };
    line.edge_restore(bd_seq, &stored, crate::now_ns());
}

/// Writes what changed since the last call: the new bdSeq, stored writes appended, or the
/// store rewritten once writes left it. A failure is a warning (the writes stay in memory).
pub fn save(line: &mut Line) {
    let Some(files) = line.edge_files() else {
        return;
    };
    let Some(path) = line.edge_store_path().map(str::to_string) else {
        return;
    };
    if let Some(bd_seq) = files.bd_seq {
        if let Err(e) = replace(&bd_seq_path(&path), bd_seq.to_string().as_bytes()) {
            tracing::warn!("cannot save the bdSeq next to store_path '{path}': {e}");
        }
    }
    let written = match files.store {
        None => Ok(()),
        Some(StoreFile::Append(bytes)) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes)),
        Some(StoreFile::Rewrite(bytes)) => replace(Path::new(&path), &bytes),
    };
    if let Err(e) = written {
        tracing::warn!(
            "cannot write store_path '{path}': {e}; stored writes are kept in memory only"
        );
    }
}

/// Replaces a file whole: written beside it, then renamed over it, so that a crash leaves the
/// old or the new content, never half of one.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}
