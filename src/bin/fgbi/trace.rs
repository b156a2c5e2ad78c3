//! Traces: a directory of `epoch-NNNN.img` raw memory images of equal size plus an optional
//! `meta.json`. Images are memory-mapped one or two at a time, never read whole into memory.

use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Page size of traces.
pub const PAGE: usize = 4096;

/// An opened trace: its image files, in epoch order.
pub struct Trace {
    pub dir: PathBuf,
    pub images: Vec<PathBuf>,
    pub image_bytes: usize,
    pub meta: Option<serde_json::Value>,
}

impl Trace {
    pub fn open(dir: &Path) -> Result<Trace, String> {
        let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| format!("{}: {e}", dir.display()))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(num) = name
                .strip_prefix("epoch-")
                .and_then(|s| s.strip_suffix(".img"))
            else {
                continue;
            };
            if let Ok(n) = num.parse::<u64>() {
                found.push((n, ent.path()));
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(format!("{}: no epoch-NNNN.img files", dir.display()));
        }
        for (i, (n, p)) in found.iter().enumerate() {
            if *n != i as u64 {
                return Err(format!(
                    "{}: epochs must be numbered 0, 1, 2, ... without gaps (found epoch {n} at position {i})",
                    p.display()
                ));
            }
        }
        let images: Vec<PathBuf> = found.into_iter().map(|(_, p)| p).collect();
        let size = |p: &Path| -> Result<u64, String> {
            std::fs::metadata(p)
                .map(|m| m.len())
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        let image_bytes = size(&images[0])?;
        if image_bytes == 0 || !image_bytes.is_multiple_of(PAGE as u64) {
            return Err(format!(
                "{}: size {image_bytes} is not a positive multiple of {PAGE}",
                images[0].display()
            ));
        }
        for p in &images[1..] {
            let s = size(p)?;
            if s != image_bytes {
                return Err(format!(
                    "{}: size {s} differs from epoch 0's {image_bytes}",
                    p.display()
                ));
            }
        }
        let meta = match std::fs::read(dir.join("meta.json")) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| format!("{}/meta.json: {e}", dir.display()))?,
            ),
            Err(_) => None,
        };
        Ok(Trace {
            dir: dir.to_path_buf(),
            images,
            image_bytes: image_bytes as usize,
            meta,
        })
    }

    pub fn epochs(&self) -> usize {
        self.images.len()
    }

    pub fn pages(&self) -> usize {
        self.image_bytes / PAGE
    }

    /// Maps image `epoch` read-only.
    pub fn map(&self, epoch: usize) -> Result<Mmap, String> {
        let p = &self.images[epoch];
        let f = File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        // SAFETY: the trace files are not modified while mapped (they are inputs of this tool);
        // a concurrent writer could only make the results wrong, not unsound for plain bytes.
        let m = unsafe { Mmap::map(&f) }.map_err(|e| format!("{}: mmap: {e}", p.display()))?;
        if m.len() != self.image_bytes {
            return Err(format!("{}: changed size while running", p.display()));
        }
        Ok(m)
    }

    /// The dirty pages of `epoch`: every page for epoch 0, else the pages that differ from the
    /// previous image.
    pub fn dirty_pages(&self, prev: Option<&[u8]>, cur: &[u8]) -> Vec<u64> {
        match prev {
            None => (0..(cur.len() / PAGE) as u64).collect(),
            Some(prev) => prev
                .chunks_exact(PAGE)
                .zip(cur.chunks_exact(PAGE))
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, _)| i as u64)
                .collect(),
        }
    }
}
