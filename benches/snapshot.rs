fn main() {
    let d = std::path::Path::new("/tmp/libgen-check/codex");
    let t = std::time::Instant::now();
    let s = codexport::library::generate(d, &codexport::library::LibrarySpec::default()).unwrap();
    println!("{s:?} {:?}", t.elapsed());
}
