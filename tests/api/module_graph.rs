//! The server's files import each other without cycles (issue 16): a reader can start at any file
//! and follow its `crate::` and `super::` imports to the leaves without coming back. A `mod.rs`
//! naming its children and a file's own `#[cfg(test)] mod tests` do not count.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Module = Vec<String>;

/// Every `.rs` file under `src`, by its module path (`hub/mod.rs` is `hub`, `lib.rs` the root).
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(src).expect("under src").with_extension("");
            let mut module: Module = relative.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if module
                .last()
                .is_some_and(|last| last == "mod" || last == "lib" || last == "main")
            {
                module.pop();
            }
            (module, file)
        })
        .collect()
}

/// The paths a file's code names through `crate::` or `super::`, brace groups expanded.
fn imported_paths(code: &str, module: &Module) -> Vec<Module> {
    let code = match code.find("#[cfg(test)]\nmod tests") {
        Some(at) => &code[..at],
        None => code,
    };
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (keyword, from_parent) in [("crate::", false), ("super::", true)] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(keyword) {
            let preceded_by_word = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + keyword.len()..];
            if preceded_by_word {
                continue;
            }
            // `super` of `a/b.rs` is `a`; of `a/b/mod.rs` (module `a::b`) also `a`.
            let mut prefix: Module = if from_parent {
                module[..module.len().saturating_sub(1)].to_vec()
            } else {
                Vec::new()
            };
            let path_len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{'))
                .unwrap_or(rest.len());
            let head = &rest[..path_len];
            if let Some(brace) = head.find('{') {
                prefix.extend(segments(&head[..brace]));
                let group = matching_group(&rest[brace + 1..]);
                expand(&prefix, group, &mut out);
            } else {
                prefix.extend(segments(head));
                out.push(prefix);
            }
        }
    }
    out
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::").filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The text inside the braces that open just before `text`.
fn matching_group(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// `a::{b, c::{d, e}}` under `prefix`: each item's full path.
fn expand(prefix: &Module, group: &str, out: &mut Vec<Module>) {
    let mut depth = 0;
    let mut item = String::new();
    let mut items = Vec::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut item));
        } else {
            item.push(c);
        }
    }
    items.push(item);
    for item in items {
        let item: String = item.chars().filter(|c| !c.is_whitespace()).collect();
        let item = item.split(" as ").next().unwrap_or("").to_owned();
        if item.is_empty() {
            continue;
        }
        let mut path = prefix.clone();
        match item.find("::{") {
            Some(at) if item.ends_with('}') => {
                path.extend(segments(&item[..at]));
                expand(&path, &item[at + 3..item.len() - 1], out);
            }
            _ => {
                path.extend(segments(&item));
                out.push(path);
            }
        }
    }
}

/// The file a path lands in: its longest prefix that is a module.
fn resolve<'a>(path: &Module, modules: &'a BTreeMap<Module, PathBuf>) -> Option<&'a Module> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// Which file imports which (a module's own children and the crate root left out).
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules(src);
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = fs::read_to_string(file).expect("a readable source file");
        for path in imported_paths(&code, module) {
            if let Some(target) = resolve(&path, &modules)
                && target != module
                && !target.is_empty()
                && !target.starts_with(module)
            {
                graph.entry(module.clone()).or_default().insert(target.clone());
            }
        }
    }
    graph
}

/// One cycle of the graph, if there is any (depth-first search).
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        done: &mut BTreeSet<Module>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_servers_files_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(
        graph.len() > 20,
        "the scan sees the server's files and their imports ({} importing files)",
        graph.len()
    );
    if let Some(cycle) = find_cycle(&graph) {
        let cycle: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_scan_finds_a_cycle_through_a_brace_group() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    fs::create_dir(dir.path().join("hub")).expect("hub/");
    fs::write(dir.path().join("lib.rs"), "pub mod hub;\npub mod state;\n").expect("lib.rs");
    fs::write(dir.path().join("hub/mod.rs"), "mod server;\n").expect("hub/mod.rs");
    fs::write(
        dir.path().join("hub/server.rs"),
        "use crate::{\n    state::{AppState, Other},\n};\n",
    )
    .expect("hub/server.rs");
    fs::write(
        dir.path().join("state.rs"),
        "pub struct AppState(crate::hub::server::Hub);\n#[cfg(test)]\nmod tests {\n    use crate::lib;\n}\n",
    )
    .expect("state.rs");
    let graph = import_graph(dir.path());
    let cycle = find_cycle(&graph).expect("hub::server -> state -> hub::server");
    assert_eq!(cycle.len(), 3);
    assert!(cycle.contains(&vec!["state".to_owned()]));

    fs::write(dir.path().join("state.rs"), "pub struct AppState;\n").expect("state.rs");
    assert_eq!(find_cycle(&import_graph(dir.path())), None);
}
