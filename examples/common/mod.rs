//! Helpers the trace examples share (not an example itself: Cargo builds only `examples/*.rs`
//! and `examples/*/main.rs`).

/// The epoch image files (`epoch-NNNN.img`) of a trace directory, in epoch order.
pub fn epoch_images(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("trace directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("epoch-") && n.ends_with(".img"))
        .collect();
    names.sort();
    names
}
