//! The README cannot drift: every `opt-backfill ...` command in its shell blocks (synopsis lines
//! with `[optional]` parts aside) must be accepted by the command-line parser, and the two
//! quick-start commands must be there. `.ci/run` runs the demo itself.

use clap::Parser;
use opt_backfill::cli::Cli;

fn commands() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // Comments and redirections are the shell's, not the parser's.
        let t = t.split(" #").next().unwrap_or("").trim();
        let t = t.split(" > ").next().unwrap_or("").trim();
        if let Some(rest) = t.strip_prefix("cargo run --release -- ") {
            out.push(format!("opt-backfill {rest}"));
        } else if t.starts_with("opt-backfill ") && !t.contains('[') && !t.contains('|') {
            out.push(t.to_string());
        }
    }
    out
}

#[test]
fn every_readme_command_parses() {
    let cmds = commands();
    assert!(
        cmds.iter().any(|c| c == "opt-backfill demo"),
        "quick start runs the demo: {cmds:?}"
    );
    assert!(cmds.len() >= 10, "{cmds:?}");
    for c in &cmds {
        let argv: Vec<&str> = c.split_whitespace().collect();
        if let Err(e) = Cli::try_parse_from(&argv) {
            panic!("README command `{c}` does not parse: {e}");
        }
    }
}

#[test]
fn readme_documents_every_exit_code() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    use opt_backfill::exit::*;
    for code in [
        OK,
        TASK_ERRORS,
        BAD_INPUT,
        GATEWAY,
        LOCKED,
        DIFF_NOT_EMPTY,
        HANGUP,
        INTERRUPTED,
        TERMINATED,
    ] {
        assert!(
            text.contains(&format!("| {code} |")),
            "exit code {code} missing from the README"
        );
    }
}
