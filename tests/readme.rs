//! The README's layout table names every file in `src/`, and every path it names exists.

use std::path::{Path, PathBuf};

const README: &str = include_str!("../README.md");

/// The table's rows: the first cell's paths, and every backticked word of the row.
fn layout_rows() -> Vec<(Vec<String>, Vec<String>)> {
    let section = README.split("\n## Layout\n").nth(1).expect("a Layout section");
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
        assert!(named, "{relative} is not in the README's layout table");
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
