//! A deterministic generator of a realistic Codex skill library, for tests, benchmarks and
//! `codexport bench gen-library`.
//!
//! Owns nothing but the tree it is told to write: it only creates and overwrites files under
//! the given codex dir and never deletes anything. The same [`LibrarySpec`] always produces a
//! byte-identical tree (contents and permission bits): a hand-written splitmix64 generator
//! seeds every file from `(seed, file number)`, and no floating point, clock or hash-map order
//! is involved.
//!
//! Shape, for `files = N`: `max(1, N / 20)` skills under `skills/<name>/`, each with a
//! `SKILL.md` (YAML frontmatter `name:` and `description:`) and a varying number of
//! `scripts/*.sh` and `scripts/*.py` (mode 0755), `references/*.md`, nested
//! `references/deep/<topic>/…` notes, and `assets/*.json` and `assets/*.md`; plus a top-level
//! `config.toml`, `AGENTS.md` and `prompts/*.md`. Exactly `N` files in all. Contents are
//! Markdown, shell, Python, JSON and TOML made of words from a fixed list, so they compress
//! like real text; sizes range from about 300 B to 16 KiB, averaging about 4 KiB.
//!
//! Large content (incompressible big files, a library of equal 1 MiB files, the one-byte edit
//! in the middle of a big file) is in `large.rs`, re-exported here.

use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod large;
mod rng;
mod text;

pub use large::{
    BlobSpec, Noise, flip_middle_byte, generate_blobs, noise, write_model_skill, write_noise_file,
};

use rng::{Rng, mix};
use text::{Content, capitalized, word};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibrarySpec {
    /// Total number of files written, top-level files included.
    pub files: usize,
    /// Different seeds give different (equally realistic) libraries.
    pub seed: u64,
}

impl Default for LibrarySpec {
    fn default() -> Self {
        Self {
            files: 10_000,
            seed: 1,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LibraryStats {
    pub files: u64,
    pub bytes: u64,
    pub skills: u64,
}

/// Writes the library described by `spec` into `codex_dir` (created if missing). Files that
/// already exist are overwritten, and their mode set; other files are left alone.
pub fn generate(codex_dir: &Path, spec: &LibrarySpec) -> io::Result<LibraryStats> {
    fs::create_dir_all(codex_dir)?;
    let plan = plan(spec);
    // Folders first, each once; then the files on all cores. A file's content depends only on
    // the seed and its number, so the order of writing changes nothing.
    let mut made = HashSet::new();
    for file in &plan.files {
        if let Some((parent, _)) = file.rel.rsplit_once('/')
            && made.insert(parent)
        {
            fs::create_dir_all(codex_dir.join(parent))?;
        }
    }
    let bytes = plan
        .files
        .par_iter()
        .enumerate()
        .map_init(String::new, |buf, (n, file)| {
            let mut rng = Rng::new(mix(spec.seed, n as u64 + 1));
            buf.clear();
            file.content.render(&mut rng, file.size, buf);
            let mut out = File::create(codex_dir.join(&file.rel))?;
            out.write_all(buf.as_bytes())?;
            // Set explicitly, whatever the umask or an earlier file's mode was.
            out.set_permissions(Permissions::from_mode(file.content.mode()))?;
            Ok::<u64, io::Error>(buf.len() as u64)
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(LibraryStats {
        files: plan.files.len() as u64,
        bytes,
        skills: plan.skills,
    })
}

/// Appends one line to one generated file, chosen deterministically from `seed` and the tree
/// as it is, and returns that file's path. Calling it again with the same seed appends to
/// the same file again, so every call changes the file's size, mtime and ctime.
pub fn touch_one(codex_dir: &Path, seed: u64) -> io::Result<PathBuf> {
    let mut rng = Rng::new(mix(seed, 0x746f_7563_685f_6f6e));
    let skills: Vec<PathBuf> = sorted_entries(&codex_dir.join("skills"))?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if skills.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no generated skill to touch",
        ));
    }
    let skill = &skills[rng.below(skills.len() as u64) as usize];
    let mut candidates = Vec::new();
    collect_text_files(skill, &mut candidates)?;
    if candidates.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no generated file to touch",
        ));
    }
    let path = candidates.swap_remove(rng.below(candidates.len() as u64) as usize);
    let line = if path.extension().is_some_and(|e| e == "md") {
        "<!-- touched by codexport bench -->\n"
    } else {
        "# touched by codexport bench\n"
    };
    fs::OpenOptions::new()
        .append(true)
        .open(&path)?
        .write_all(line.as_bytes())?;
    Ok(path)
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    out.sort();
    Ok(out)
}

/// Markdown, shell and Python files below `dir`, in sorted order.
fn collect_text_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for path in sorted_entries(dir)? {
        let meta = fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            collect_text_files(&path, out)?;
        } else if meta.is_file()
            && path
                .extension()
                .is_some_and(|e| e == "md" || e == "sh" || e == "py")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The whole library before any byte is written: paths, kinds and target sizes.
struct Plan {
    files: Vec<Planned>,
    skills: u64,
}

struct Planned {
    rel: String,
    content: Content,
    /// The content stops at the first block boundary at or after this many bytes.
    size: usize,
}

/// Skills get one file in this many, at least one skill.
const FILES_PER_SKILL: usize = 20;
/// Top-level prompts: one per this many files, between 1 and 20.
const FILES_PER_PROMPT: usize = 500;

fn plan(spec: &LibrarySpec) -> Plan {
    let n = spec.files;
    let mut rng = Rng::new(mix(spec.seed, 0));
    let mut files = Vec::with_capacity(n);
    if n == 0 {
        return Plan { files, skills: 0 };
    }
    let skills = (n / FILES_PER_SKILL).max(1);
    let mut left = n - skills;

    // Top-level files first, as long as there is room after one SKILL.md per skill.
    let prompts = (n / FILES_PER_PROMPT).clamp(1, 20);
    for i in 0..(2 + prompts).min(left) {
        let (rel, content) = match i {
            0 => ("config.toml".to_owned(), Content::Config),
            1 => ("AGENTS.md".to_owned(), Content::Agents),
            _ => {
                let (a, b) = (word(&mut rng), word(&mut rng));
                let title = format!("{} {b}", capitalized(a));
                (
                    format!("prompts/{a}-{b}-{}.md", i - 1),
                    Content::Prompt { title },
                )
            }
        };
        files.push(Planned {
            rel,
            content,
            size: file_size(&mut rng),
        });
        left -= 1;
    }

    // The remaining files go to skills in proportion to a random weight, so skill sizes vary.
    let weights: Vec<usize> = (0..skills).map(|_| 1 + rng.below(8) as usize).collect();
    let total: usize = weights.iter().sum();
    let mut extra: Vec<usize> = weights.iter().map(|w| left * w / total).collect();
    // Each floor loses less than one file, so fewer than `skills` are left over.
    let rest = left - extra.iter().sum::<usize>();
    for e in extra.iter_mut().take(rest) {
        *e += 1;
    }

    let mut names = HashSet::new();
    for (i, &count) in extra.iter().enumerate() {
        let (a, b) = (word(&mut rng), word(&mut rng));
        let mut name = format!("{a}-{b}");
        if !names.insert(name.clone()) {
            name = format!("{a}-{b}-{i}");
            names.insert(name.clone());
        }
        let title = format!("{} {}", capitalized(a), b);
        let dir = format!("skills/{name}");
        files.push(Planned {
            rel: format!("{dir}/SKILL.md"),
            content: Content::Skill { name, title },
            size: file_size(&mut rng),
        });
        // Like real skills, most have only `scripts/` and `references/`; some also have nested
        // notes (two topics, one with a sub-folder) or `assets/`: about five folders per skill.
        let deep = rng.below(100) < 40;
        let assets = rng.below(100) < 50;
        let (topics, sub) = ([word(&mut rng), word(&mut rng)], word(&mut rng));
        for j in 0..count {
            let (w1, w2) = (word(&mut rng), word(&mut rng));
            let title = format!("{} {w2}", capitalized(w1));
            let (rel, content) = match rng.below(100) {
                0..14 => (format!("{dir}/scripts/{w1}-{w2}-{j}.sh"), Content::Shell),
                14..24 => (format!("{dir}/scripts/{w1}_{w2}_{j}.py"), Content::Python),
                64..76 if deep => {
                    let topic = topics[rng.below(2) as usize];
                    (
                        format!("{dir}/references/deep/{topic}/{w1}-{j}.md"),
                        Content::Markdown { title },
                    )
                }
                76..80 if deep => (
                    format!("{dir}/references/deep/{}/{sub}/{w1}-{j}.md", topics[0]),
                    Content::Markdown { title },
                ),
                80..90 if assets => (format!("{dir}/assets/{w1}-{w2}-{j}.json"), Content::Json),
                90..100 if assets => (
                    format!("{dir}/assets/{w1}-{w2}-{j}.md"),
                    Content::Markdown { title },
                ),
                _ => (
                    format!("{dir}/references/{w1}-{w2}-{j}.md"),
                    Content::Markdown { title },
                ),
            };
            files.push(Planned {
                rel,
                content,
                size: file_size(&mut rng),
            });
        }
    }
    debug_assert_eq!(files.len(), n);
    Plan {
        files,
        skills: skills as u64,
    }
}

/// A target size between 300 B and 16 KiB, skewed small: six doubling buckets, uniform within
/// each, weighted so the mean (plus the last block's overshoot) is close to 4 KiB.
fn file_size(rng: &mut Rng) -> usize {
    const BUCKETS: [(u64, u64, u64); 6] = [
        (14, 300, 600),
        (31, 600, 1_200),
        (50, 1_200, 2_400),
        (70, 2_400, 4_800),
        (88, 4_800, 9_600),
        (100, 9_600, 16_000),
    ];
    let pick = rng.below(100);
    let &(_, lo, hi) = BUCKETS
        .iter()
        .find(|(upto, _, _)| pick < *upto)
        .expect("pick < 100");
    (lo + rng.below(hi - lo)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    /// Relative path → (mode, bytes) of every file below `dir`.
    fn tree(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
        fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    go(root, &p, out);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
                    out.insert(rel, (m.mode() & 0o7777, fs::read(&p).unwrap()));
                }
            }
        }
        let mut out = BTreeMap::new();
        go(dir, dir, &mut out);
        out
    }

    #[test]
    fn deterministic_exact_and_executable() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let spec = LibrarySpec {
            files: 200,
            seed: 7,
        };
        let sa = generate(a.path(), &spec).unwrap();
        let sb = generate(&b.path().join("new/codex"), &spec).unwrap();
        assert_eq!(sa, sb);
        let (ta, tb) = (tree(a.path()), tree(&b.path().join("new/codex")));
        assert!(ta == tb, "two generations differ");
        assert_eq!(ta.len(), 200);
        assert_eq!(sa.files, 200);
        assert_eq!(sa.skills, 10);
        assert_eq!(
            sa.bytes,
            ta.values().map(|(_, b)| b.len() as u64).sum::<u64>()
        );

        let scripts: Vec<_> = ta
            .iter()
            .filter(|(p, _)| p.ends_with(".sh") || p.ends_with(".py"))
            .collect();
        assert!(scripts.iter().any(|(p, _)| p.ends_with(".sh")));
        assert!(scripts.iter().any(|(p, _)| p.ends_with(".py")));
        for (path, (mode, _)) in &ta {
            let exec = path.ends_with(".sh") || path.ends_with(".py");
            assert_eq!(*mode, if exec { 0o755 } else { 0o644 }, "{path}");
        }
        for top in ["config.toml", "AGENTS.md"] {
            assert!(ta.contains_key(top), "{top}");
        }
        assert!(ta.keys().any(|p| p.starts_with("prompts/")));
        assert!(ta.keys().any(|p| p.contains("/references/deep/")));
        let skill_mds: Vec<_> = ta
            .iter()
            .filter(|(p, _)| p.ends_with("/SKILL.md"))
            .collect();
        assert_eq!(skill_mds.len(), 10);
        for (_, (_, bytes)) in skill_mds {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(text.starts_with("---\nname: "));
            assert!(text.contains("\ndescription: Use when"));
        }

        // Regenerating over an existing tree gives the same tree; another seed does not.
        generate(a.path(), &spec).unwrap();
        assert!(tree(a.path()) == tb);
        let c = tempfile::tempdir().unwrap();
        generate(c.path(), &LibrarySpec { seed: 8, ..spec }).unwrap();
        assert!(tree(c.path()) != tb);
    }

    #[test]
    fn sizes_in_band() {
        let dir = tempfile::tempdir().unwrap();
        let stats = generate(
            dir.path(),
            &LibrarySpec {
                files: 1_000,
                seed: 1,
            },
        )
        .unwrap();
        assert_eq!(stats.files, 1_000);
        assert_eq!(stats.skills, 50);
        let mean = stats.bytes / stats.files;
        assert!((3_400..=4_800).contains(&mean), "mean file size {mean}");
        let sizes: Vec<usize> = tree(dir.path()).values().map(|(_, b)| b.len()).collect();
        assert_eq!(sizes.len(), 1_000);
        assert!(
            sizes.iter().all(|&s| (250..=17_000).contains(&s)),
            "{sizes:?}"
        );
    }

    #[test]
    fn exact_counts_for_small_and_odd_sizes() {
        for files in [0, 1, 2, 3, 5, 21, 39, 41, 777] {
            let dir = tempfile::tempdir().unwrap();
            let stats = generate(dir.path(), &LibrarySpec { files, seed: 3 }).unwrap();
            assert_eq!(stats.files, files as u64);
            assert_eq!(tree(dir.path()).len(), files, "files = {files}");
            assert_eq!(
                stats.skills,
                if files == 0 {
                    0
                } else {
                    (files as u64 / 20).max(1)
                }
            );
        }
    }

    #[test]
    fn touch_one_changes_one_file() {
        let dir = tempfile::tempdir().unwrap();
        generate(
            dir.path(),
            &LibrarySpec {
                files: 100,
                seed: 1,
            },
        )
        .unwrap();
        let before = tree(dir.path());
        let path = touch_one(dir.path(), 42).unwrap();
        assert_eq!(touch_one(dir.path(), 42).unwrap(), path);
        let after = tree(dir.path());
        let changed: Vec<_> = after
            .iter()
            .filter(|(p, v)| before.get(*p) != Some(v))
            .collect();
        assert_eq!(changed.len(), 1);
        assert!(path.ends_with(changed[0].0));
        assert!(after[changed[0].0].1.len() > before[changed[0].0].1.len());
    }
}
