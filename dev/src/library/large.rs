//! Large content for the large-content benchmarks and tests: incompressible bytes (the
//! content of a model, a dataset or an archive), written as one big file or as a library of
//! many equal files, and the one-byte edit a benchmark makes in the middle of a big file.
//!
//! Every byte comes from one xorshift stream per seed, so the same call always writes the
//! same bytes, and writing streams: memory holds one buffer of [`PIECE`] bytes whatever the
//! size written (a 4 GiB file must not take 4 GiB of the benchmark's own memory, which
//! would crowd the processes it measures).

use super::LibraryStats;
use rayon::prelude::*;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes generated and written at a time.
const PIECE: usize = 1 << 20;

/// The xorshift stream behind [`noise`]: bytes that neither compress nor repeat.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            let x = &mut self.0;
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *b = *x as u8;
        }
    }
}

/// `len` deterministic bytes that neither compress nor repeat (xorshift of `seed`): the
/// content of a model or archive, for the large-content benchmarks and tests.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    Noise::new(seed).fill(&mut out);
    out
}

/// Writes `len` bytes of [`noise`]`(len, seed)` to `path` (created or truncated), a piece at
/// a time.
pub fn write_noise_file(path: &Path, len: u64, seed: u64) -> io::Result<()> {
    let mut out = File::create(path)?;
    let mut stream = Noise::new(seed);
    let mut buf = vec![0; PIECE];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left).map_or(PIECE, |l| l.min(PIECE));
        stream.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Writes a skill carrying one big file into `codex_dir`: `skills/model/SKILL.md` and
/// `skills/model/assets/model.bin` of `len` bytes of noise. Returns the big file's path.
pub fn write_model_skill(codex_dir: &Path, len: u64, seed: u64) -> io::Result<PathBuf> {
    let assets = codex_dir.join("skills/model/assets");
    fs::create_dir_all(&assets)?;
    fs::write(
        codex_dir.join("skills/model/SKILL.md"),
        "---\nname: model\ndescription: Use when the model is needed\n---\n",
    )?;
    let big = assets.join("model.bin");
    write_noise_file(&big, len, seed)?;
    Ok(big)
}

/// A library of equal incompressible files (a skill shipping models or archives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobSpec {
    /// Number of files.
    pub files: usize,
    /// Bytes of each.
    pub size: u64,
    pub seed: u64,
}

impl BlobSpec {
    /// Files of 1 MiB, `mib` of them (at least one): the large library of the benchmarks.
    pub fn of_mib(mib: u64) -> Self {
        Self {
            files: mib.max(1) as usize,
            size: 1 << 20,
            seed: 17,
        }
    }
}

/// Files per folder of a blob library.
const BLOBS_PER_FOLDER: usize = 32;

/// Writes the library of `spec` into `codex_dir`: `skills/blobs-<k>/assets/<n>.bin`, 32 files
/// a folder, each a different stream of noise, on all cores. Returns what it wrote.
pub fn generate_blobs(codex_dir: &Path, spec: &BlobSpec) -> io::Result<LibraryStats> {
    let folders = spec.files.div_ceil(BLOBS_PER_FOLDER);
    for k in 0..folders {
        fs::create_dir_all(codex_dir.join(format!("skills/blobs-{k:03}/assets")))?;
    }
    (0..spec.files).into_par_iter().try_for_each(|n| {
        let rel = format!("skills/blobs-{:03}/assets/{n:05}.bin", n / BLOBS_PER_FOLDER);
        let seed = super::rng::mix(spec.seed, n as u64 + 1);
        write_noise_file(&codex_dir.join(rel), spec.size, seed)
    })?;
    Ok(LibraryStats {
        files: spec.files as u64,
        bytes: spec.files as u64 * spec.size,
        skills: folders as u64,
    })
}

/// The one-byte edit: inverts the byte in the middle of the file at `path`, in place (size
/// kept, mtime and ctime moved). Returns the offset edited.
pub fn flip_middle_byte(path: &Path) -> io::Result<u64> {
    let file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let at = file.metadata()?.len() / 2;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at)?;
    file.write_all_at(&[!byte[0]], at)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_noise_is_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        let len = PIECE as u64 * 2 + 12_345;
        write_noise_file(&p, len, 9).unwrap();
        assert!(fs::read(&p).unwrap() == noise(len as usize, 9));
        assert_ne!(noise(64, 1), noise(64, 2));
        let big = write_model_skill(dir.path(), 1000, 9).unwrap();
        assert!(fs::read(&big).unwrap() == noise(1000, 9));
        assert!(dir.path().join("skills/model/SKILL.md").is_file());
    }

    #[test]
    fn blob_library_and_middle_edit() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BlobSpec {
            files: 40,
            size: 1000,
            seed: 3,
        };
        let stats = generate_blobs(dir.path(), &spec).unwrap();
        assert_eq!((stats.files, stats.bytes, stats.skills), (40, 40_000, 2));
        let a = dir.path().join("skills/blobs-000/assets/00000.bin");
        let b = dir.path().join("skills/blobs-001/assets/00039.bin");
        let (before, other) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert_eq!(before.len(), 1000);
        assert_ne!(before, other);
        assert_eq!(flip_middle_byte(&a).unwrap(), 500);
        let after = fs::read(&a).unwrap();
        let differ: Vec<usize> = (0..1000).filter(|&i| before[i] != after[i]).collect();
        assert_eq!(differ, [500]);
    }
}
