//! Build-time generator for the Debian package (`make deb`): credctl(8) and credctl's bash
//! completion, both from credctl's own clap definition (`credctl::cli::Cli`), so that neither can
//! drift from what credctl actually parses.
//!
//! `credd-packaging-gen TEMPLATE OUT_DIR` writes `OUT_DIR/man/credctl.8` and
//! `OUT_DIR/completions/credctl`. TEMPLATE (`packaging/man/credctl.8.in`) is the hand-written
//! part of the page — description, exit status, files, examples — with placeholders:
//! `@VERSION@` and `@DATE@` (in `.TH`), and the lines `.\" @OPTIONS@` (global options) and
//! `.\" @COMMANDS@` (one subsection per command, with its synopsis and every argument).
//! `@DATE@` is `SOURCE_DATE_EPOCH` (reproducible builds) as YYYY-MM-DD, else today.

use std::path::Path;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, CommandFactory};
use clap_complete::Shell;
use credctl::cli::Cli;
use roff::{Inline, Roff, bold, italic, roman};

const OPTIONS_MARK: &str = ".\\\" @OPTIONS@";
const COMMANDS_MARK: &str = ".\\\" @COMMANDS@";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [template, out] = args.as_slice() else {
        eprintln!(
            "usage: credd-packaging-gen TEMPLATE OUT_DIR\n  writes OUT_DIR/man/credctl.8 (from \
             TEMPLATE, packaging/man/credctl.8.in) and OUT_DIR/completions/credctl"
        );
        return ExitCode::from(2);
    };
    match run(Path::new(template), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("credd-packaging-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(template: &Path, out: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(template)
        .map_err(|e| format!("cannot read {}: {e}", template.display()))?;
    write(&out.join("man/credctl.8"), &man_page(&text, &date())?)?;
    write(&out.join("completions/credctl"), &bash_completion())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The page's date: `SOURCE_DATE_EPOCH` when set (reproducible builds), else today.
fn date() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    credctl::cli::format_rfc3339(seconds)[..10].to_string()
}

/// credctl's clap command, built (help, version and global arguments propagated).
fn command() -> Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// The template with its placeholders filled in. Every placeholder must be present once.
fn man_page(template: &str, date: &str) -> Result<String, String> {
    let cmd = command();
    let version = cmd.get_version().unwrap_or("unknown").to_string();
    for mark in ["@VERSION@", "@DATE@", OPTIONS_MARK, COMMANDS_MARK] {
        if !template.contains(mark) {
            return Err(format!("the template has no {mark} placeholder"));
        }
    }
    let mut page = String::new();
    for line in template.lines() {
        match line.trim_end() {
            OPTIONS_MARK => page.push_str(&global_options(&cmd).render()),
            COMMANDS_MARK => page.push_str(&commands(&cmd).render()),
            _ => {
                page.push_str(&line.replace("@VERSION@", &version).replace("@DATE@", date));
                page.push('\n');
            }
        }
    }
    Ok(page)
}

fn bash_completion() -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(Shell::Bash, &mut cmd, "credctl", &mut out);
    String::from_utf8(out).expect("clap_complete writes UTF-8")
}

/// The top-level arguments: those without a heading first (under the template's OPTIONS
/// section), then one subsection per help heading (the operator guide's `--modify-user-state`).
fn global_options(cmd: &Command) -> Roff {
    let mut roff = Roff::new();
    let visible: Vec<&Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    for arg in visible.iter().filter(|a| a.get_help_heading().is_none()) {
        arg_item(&mut roff, arg);
    }
    let mut headings: Vec<&str> = Vec::new();
    for heading in visible.iter().filter_map(|a| a.get_help_heading()) {
        if !headings.contains(&heading) {
            headings.push(heading);
        }
    }
    for heading in headings {
        roff.control("SS", [heading]);
        for arg in visible
            .iter()
            .filter(|a| a.get_help_heading() == Some(heading))
        {
            arg_item(&mut roff, arg);
        }
    }
    roff
}

/// One subsection per command that takes arguments or has no subcommands of its own (`user` is
/// only a prefix; `audit` is both a command and the parent of `audit verify`).
fn commands(cmd: &Command) -> Roff {
    let mut roff = Roff::new();
    walk(cmd, &mut vec![cmd.get_name().to_string()], &mut roff);
    roff
}

fn walk(cmd: &Command, path: &mut Vec<String>, roff: &mut Roff) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        path.push(sub.get_name().to_string());
        let args = own_args(sub);
        if !args.is_empty() || !sub.has_subcommands() {
            command_entry(sub, &path.join(" "), &args, roff);
        }
        walk(sub, path, roff);
        path.pop();
    }
}

/// A subcommand's own arguments: not the propagated global ones (`--socket`) nor the automatic
/// `--help` and `--version`, which the page explains once.
fn own_args(cmd: &Command) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .collect()
}

fn command_entry(cmd: &Command, path: &str, args: &[&Arg], roff: &mut Roff) {
    roff.control("SS", [path]);
    let mut line = vec![bold(path)];
    line.extend(synopsis(cmd, args));
    roff.text(line);
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        roff.control("PP", []);
        paragraphs(roff, &about.to_string());
    }
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) =
        args.iter().partition(|a| a.is_positional());
    for arg in positionals.into_iter().chain(options) {
        arg_item(roff, arg);
    }
}

/// `NAME [--uid N] [--password-stdin]`, `(NAME | --uid N) [--reason TEXT]`: positionals first as
/// in the README, optional arguments in brackets, a required choice in parentheses.
fn synopsis(cmd: &Command, args: &[&Arg]) -> Vec<Inline> {
    let choices: Vec<Vec<&clap::Id>> = cmd
        .get_groups()
        .filter(|g| g.is_required_set())
        .map(|g| g.get_args().collect())
        .collect();
    let mut ordered: Vec<&Arg> = args.iter().copied().filter(|a| a.is_positional()).collect();
    ordered.extend(args.iter().copied().filter(|a| !a.is_positional()));
    let mut line = Vec::new();
    let mut done: Vec<&clap::Id> = Vec::new();
    for arg in ordered {
        if done.contains(&arg.get_id()) {
            continue;
        }
        line.push(roman(" "));
        if let Some(choice) = choices.iter().find(|c| c.contains(&arg.get_id())) {
            line.push(roman("("));
            for (i, id) in choice.iter().enumerate() {
                if let Some(member) = args.iter().find(|a| a.get_id() == *id) {
                    if i > 0 {
                        line.push(roman(" | "));
                    }
                    line.extend(label(member));
                    done.push(member.get_id());
                }
            }
            line.push(roman(")"));
            continue;
        }
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        line.extend(label(arg));
        if !required {
            line.push(roman("]"));
        }
    }
    line
}

/// `--uid N`, `-h, --help`, or a positional's `NAME`.
fn label(arg: &Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if arg.is_positional() {
        return vec![italic(value)];
    }
    let mut out = Vec::new();
    if let Some(short) = arg.get_short() {
        out.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            out.push(roman(", "));
        }
    }
    if let Some(long) = arg.get_long() {
        out.push(bold(format!("--{long}")));
    }
    if arg.get_action().takes_values() {
        out.push(roman(" "));
        out.push(italic(value));
    }
    out
}

/// A `.TP` item: the label, then the help with default, environment variable and values.
fn arg_item(roff: &mut Roff, arg: &Arg) {
    roff.control("TP", []);
    roff.text(label(arg));
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut extra = Vec::new();
    if arg.get_action().takes_values() {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !values.is_empty() && !arg.is_hide_possible_values_set() {
            extra.push(format!("Values: {}.", values.join(", ")));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        if !defaults.is_empty() && !arg.is_hide_default_value_set() {
            extra.push(format!("Default: {}.", defaults.join(", ")));
        }
    }
    if let Some(env) = arg.get_env()
        && !arg.is_hide_env_set()
    {
        extra.push(format!("Environment: `{}`.", env.to_string_lossy()));
    }
    if !extra.is_empty() {
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        help.push_str(&format!(" {}", extra.join(" ")));
    }
    if help.trim().is_empty() {
        return;
    }
    // Inside a .TP item a blank-line paragraph break would end the item: keep one paragraph.
    roff.text(code_spans(&join_paragraphs(&help, " ")));
}

/// clap's help text as paragraphs (`.PP` between them).
fn paragraphs(roff: &mut Roff, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        let paragraph = join_paragraphs(paragraph, " ");
        if paragraph.is_empty() {
            continue;
        }
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text(code_spans(&paragraph));
    }
}

/// The text on one line: clap's line breaks and paragraph breaks become `sep`.
fn join_paragraphs(text: &str, sep: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(sep)
}

/// Markdown-style `code` in credctl's help as bold, the rest as roman.
fn code_spans(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { bold(part) } else { roman(part) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = ".TH CREDCTL 8 \"@DATE@\" \"credd @VERSION@\"\n.SH OPTIONS\n\
                            .\\\" @OPTIONS@\n.SH COMMANDS\n.\\\" @COMMANDS@\n.SH FILES\n";

    /// Every (sub)command path and its own long flags, as clap knows them.
    fn all_commands(cmd: &Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{path} {}", sub.get_name());
            let longs = own_args(sub)
                .iter()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect();
            out.push((path.clone(), longs));
            all_commands(sub, &path, out);
        }
    }

    #[test]
    fn the_page_documents_every_command_and_flag() {
        let page = man_page(TEMPLATE, "2026-01-02").unwrap();
        assert!(page.starts_with(".TH CREDCTL 8 \"2026-01-02\" \"credd "));
        assert!(!page.contains('@'), "placeholder left: {page}");
        let mut found = Vec::new();
        all_commands(&command(), "credctl", &mut found);
        assert!(found.iter().any(|(p, _)| p == "credctl user add"));
        assert!(found.iter().any(|(p, _)| p == "credctl audit verify"));
        for (path, longs) in found {
            if path == "credctl user" {
                continue; // only a prefix
            }
            assert!(page.contains(&format!(".SS \"{path}\"")), "{path} missing");
            for long in longs {
                let escaped = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
                assert!(page.contains(&escaped), "{path} --{long} missing");
            }
        }
        for global in [
            "socket",
            "modify\\-user\\-state",
            "action",
            "help",
            "version",
        ] {
            assert!(
                page.contains(&format!("\\fB\\-\\-{global}\\fR")),
                "--{global}"
            );
        }
        assert!(page.contains("CREDD_ADMIN_SOCKET"));
    }

    #[test]
    fn a_required_choice_is_shown_as_one() {
        let page = man_page(TEMPLATE, "2026-01-02").unwrap();
        let lock = page
            .lines()
            .find(|l| l.starts_with("\\fBcredctl lock\\fR"))
            .expect("lock synopsis");
        assert!(
            lock.contains("(\\fINAME\\fR | \\fB\\-\\-uid\\fR \\fIN\\fR)"),
            "{lock}"
        );
    }

    #[test]
    fn a_template_without_a_placeholder_is_refused() {
        assert!(man_page(".TH X 8\n", "2026-01-02").is_err());
    }

    #[test]
    fn the_completion_knows_the_subcommands() {
        let script = bash_completion();
        assert!(script.contains("complete -F _credctl"));
        for word in [
            "user",
            "passwd",
            "reset",
            "audit",
            "import",
            "--from-shadow",
        ] {
            assert!(script.contains(word), "{word}");
        }
    }
}
