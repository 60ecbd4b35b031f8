//! The README is a front door: short, with both set-up commands on its first screen. The layout
//! table (CONTRIBUTING.md) names every file in `src/`, and every path it names exists. Every
//! relative link in the documentation leads somewhere.

use std::path::{Path, PathBuf};

const README: &str = include_str!("../README.md");
const CONTRIBUTING: &str = include_str!("../CONTRIBUTING.md");

/// The table's rows: the first cell's paths, and every backticked word of the row.
fn layout_rows() -> Vec<(Vec<String>, Vec<String>)> {
    let section = CONTRIBUTING.split("\n## Layout\n").nth(1).expect("a Layout section");
    let section = section.split("\n## ").next().unwrap();
    let ticked =
        |text: &str| -> Vec<String> { text.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let first = line.split(" | ").next().unwrap();
            (ticked(first), ticked(line))
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files_under(&path, out) } else { out.push(path) }
    }
}

#[test]
fn every_file_in_src_is_in_the_layout_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = layout_rows();
    let mut files = Vec::new();
    files_under(&root.join("src"), &mut files);
    for file in files {
        let relative = file.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
        let named = rows.iter().any(|(paths, words)| {
            paths.iter().any(|path| {
                path == &relative
                    || relative.strip_prefix(path.as_str()).is_some_and(|inside| {
                        path.ends_with('/')
                            && (words.iter().any(|w| w == inside)
                                || inside.split_once('/').is_some_and(|(folder, name)| {
                                    words.iter().any(|w| w == &format!("{folder}/"))
                                        && words.iter().any(|w| w == name)
                                }))
                    })
            })
        });
        assert!(named, "{relative} is not in CONTRIBUTING.md's layout table");
    }
}

#[test]
fn every_path_the_layout_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (paths, _) in layout_rows() {
        for path in paths {
            assert!(root.join(&path).exists(), "the layout table names {path}, which does not exist");
        }
    }
}

#[test]
fn the_readme_is_a_front_door() {
    let lines: Vec<&str> = README.lines().collect();
    assert!(lines.len() <= 300, "README.md has {} lines; the reference goes in docs/", lines.len());
    for command in ["cargo run --release -- serve", "cargo test"] {
        let at = lines.iter().position(|line| *line == command);
        assert!(
            at.is_some_and(|at| at < 40),
            "{command:?} is not on a line of its own in the first 40 ({at:?})"
        );
    }
}

/// The relative links of a Markdown file: `[text](path)` and `[text](path#anchor)`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with('#'))
        .map(|target| target.split('#').next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_relative_link_in_the_documentation_leads_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("CONTRIBUTING.md"), root.join("BENCHMARKS.md")];
    files_under(&root.join("docs"), &mut files);
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            let target = file.parent().unwrap().join(&link);
            assert!(target.exists(), "{} links to {link}, which does not exist", file.display());
        }
    }
}
