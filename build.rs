//! Build script. A normal build does nothing here (and writes nothing into the source tree).
//!
//! With the `header` feature and `FGBI_REGEN_HEADER` set, it generates the C header from
//! src/ffi with cbindgen (pinned in Cargo.toml, configured by cbindgen.toml): to
//! `include/libfgbi.h` when the variable is `1`, else to the path it names. The module rustdoc of
//! src/ffi/mod.rs (the API conventions) becomes the header's opening comment.
//! `scripts/gen-header.sh` wraps this.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "header")]
    header::generate();
}

#[cfg(feature = "header")]
mod header {
    use std::path::PathBuf;

    /// The `//!` lines opening `src`, as a C comment.
    fn module_doc(src: &str) -> String {
        let mut out = String::from("/*\n");
        for line in src.lines().take_while(|l| l.starts_with("//!")) {
            let text = line.trim_start_matches("//!").replace("*/", "* /");
            let text = text.strip_prefix(' ').unwrap_or(&text);
            if text.is_empty() {
                out.push_str(" *\n");
            } else {
                out.push_str(" * ");
                out.push_str(text);
                out.push('\n');
            }
        }
        out.push_str(" */");
        out
    }

    /// `#define NAME -1` becomes `#define NAME (-1)`, safe in any expression.
    fn parenthesize_negative_macros(text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 64);
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches('\n');
            let mut parts = body.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("#define"), Some(name), Some(value)) if value.starts_with('-') => {
                    out.push_str(&format!("#define {name} ({value})"));
                    out.push_str(&line[body.len()..]);
                }
                _ => out.push_str(line),
            }
        }
        out
    }

    pub fn generate() {
        println!("cargo:rerun-if-env-changed=FGBI_REGEN_HEADER");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        println!("cargo:rerun-if-changed=src/ffi");
        println!("cargo:rerun-if-changed=Cargo.toml");
        let Ok(target) = std::env::var("FGBI_REGEN_HEADER") else {
            return;
        };
        let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let out = if target == "1" {
            root.join("include/libfgbi.h")
        } else {
            PathBuf::from(target)
        };
        println!("cargo:rerun-if-changed={}", out.display());
        let mod_rs = root.join("src/ffi/mod.rs");
        let src = std::fs::read_to_string(&mod_rs).expect("reading src/ffi/mod.rs");
        let mut config =
            cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("reading cbindgen.toml");
        let banner = config.header.take().unwrap_or_default();
        config.header = Some(format!("{banner}\n{}", module_doc(&src)));
        let bindings = cbindgen::Builder::new()
            .with_config(config)
            .with_src(&mod_rs)
            .generate()
            .expect("generating the C header");
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).expect("creating the header's directory");
        }
        let mut text = Vec::new();
        bindings.write(&mut text);
        let text = parenthesize_negative_macros(&String::from_utf8(text).expect("UTF-8 header"));
        if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&out, text).expect("writing the header");
        }
        println!("cargo:warning=wrote {}", out.display());
    }
}
