//! Property tests of the config parser on generated text: nothing panics, every error is one
//! line, generated valid configs parse to the values written, mutated ones parse or give a
//! one-line error, and an unknown key is named. The same invariants drive the `config` fuzz
//! target (`fuzz/`, docs/fuzzing.md).

use std::time::Duration;

use credd::config::Config;
use proptest::prelude::*;

/// Parses; an error must be something, on one line.
fn parse(text: &str) -> Result<Result<Config, String>, TestCaseError> {
    let result = Config::parse(text);
    if let Err(message) = &result {
        prop_assert!(!message.trim().is_empty(), "empty error for {:?}", text);
        prop_assert!(
            !message.contains(['\n', '\r']),
            "error over several lines: {:?} for {:?}",
            message,
            text
        );
    }
    Ok(result)
}

/// Parses, to a config or a clean error: either is fine.
fn parses_cleanly(text: &str) -> Result<(), TestCaseError> {
    parse(text).map(drop)
}

/// A duration as the config writes them, and its value.
fn duration(min: u64, max: u64) -> impl Strategy<Value = (String, Duration)> {
    (min..=max).prop_flat_map(|secs| {
        let plain = Just((format!("{secs}s"), Duration::from_secs(secs)));
        let split = {
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            let mut text = String::new();
            for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
                if n > 0 {
                    text.push_str(&format!("{n}{unit}"));
                }
            }
            Just((text, Duration::from_secs(secs)))
        };
        prop_oneof![plain, split]
    })
}

/// A valid config: some sections, some keys in each, values in range, and what they must parse
/// to. `None` is a key left out (its default applies).
#[derive(Debug, Clone)]
struct GenConfig {
    text: String,
    iterations: Option<u32>,
    lengths: Option<(usize, usize)>,
    deny: Option<u32>,
    unlock_time: Option<Option<Duration>>,
    ttl: Option<Duration>,
    idle_timeout: Option<Duration>,
    host: Option<(u32, u32)>,
    syslog: Option<String>,
}

#[allow(clippy::type_complexity)]
fn gen_config() -> impl Strategy<Value = GenConfig> {
    (
        proptest::option::of(1_000u32..=10_000_000),
        proptest::option::of((1usize..=4096).prop_flat_map(|min| (Just(min), min..=4096))),
        proptest::option::of(0u32..=50),
        proptest::option::of(proptest::option::of(duration(1, 7 * 86_400))),
        proptest::option::of(duration(60, 86_400)),
        proptest::option::of(duration(1, 3600)),
        proptest::option::of((0u32..1000, 1u32..1000)),
        proptest::option::of(prop::sample::select(vec![
            "none",
            "unix:/dev/log",
            "udp:127.0.0.1:514",
            "tcp:[::1]:601",
        ])),
        any::<bool>(), // inline tables or a [rate.host] section
        any::<bool>(), // comments and blank lines
    )
        .prop_map(
            |(iterations, lengths, deny, unlock, ttl, idle, host, syslog, inline, comments)| {
                let mut text = String::new();
                let mut section = |name: &str, keys: Vec<String>| {
                    if keys.is_empty() {
                        return;
                    }
                    if comments {
                        text.push_str("# generated\n\n");
                    }
                    text.push_str(&format!("[{name}]\n"));
                    for key in keys {
                        text.push_str(&key);
                        text.push('\n');
                    }
                };
                section(
                    "hashing",
                    iterations
                        .iter()
                        .map(|i| format!("iterations = {i}"))
                        .collect(),
                );
                section(
                    "password",
                    lengths
                        .iter()
                        .flat_map(|(min, max)| {
                            [format!("min_length = {min}"), format!("max_length = {max}")]
                        })
                        .collect(),
                );
                let mut lockout = Vec::new();
                if let Some(deny) = deny {
                    lockout.push(format!("deny = {deny}"));
                }
                match &unlock {
                    Some(None) => lockout.push("unlock_time = \"never\"".into()),
                    Some(Some((text, _))) => lockout.push(format!("unlock_time = {text:?}")),
                    None => {}
                }
                section("lockout", lockout);
                section(
                    "codes",
                    ttl.iter().map(|(t, _)| format!("ttl = {t:?}")).collect(),
                );
                section(
                    "audit",
                    syslog.iter().map(|s| format!("syslog = {s:?}")).collect(),
                );
                section(
                    "limits",
                    idle.iter()
                        .map(|(t, _)| format!("idle_timeout = {t:?}"))
                        .collect(),
                );
                if let Some((burst, per_minute)) = host {
                    if inline {
                        section(
                            "rate",
                            vec![format!(
                                "host = {{ burst = {burst}, per_minute = {per_minute} }}"
                            )],
                        );
                    } else {
                        section(
                            "rate.host",
                            vec![
                                format!("burst = {burst}"),
                                format!("per_minute = {per_minute}"),
                            ],
                        );
                    }
                }
                GenConfig {
                    text,
                    iterations,
                    lengths,
                    deny,
                    unlock_time: unlock.map(|u| u.map(|(_, d)| d)),
                    ttl: ttl.map(|(_, d)| d),
                    idle_timeout: idle.map(|(_, d)| d),
                    host,
                    syslog: syslog.map(str::to_string),
                }
            },
        )
}

/// Pieces of TOML and of this config, to build near-miss texts from.
fn tomlish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "[hashing]",
        "[password]",
        "[lockout]",
        "[rate]",
        "[rate.host]",
        "[codes]",
        "[audit]",
        "[limits]",
        "[[limits]]",
        "[admin]",
        "iterations",
        "deny",
        "unlock_time",
        "ttl",
        "syslog",
        "burst",
        "per_minute",
        "idle_timeout",
        "group",
        "min_length",
        "=",
        " = ",
        "\n",
        "\n",
        "\r\n",
        "\r",
        "\"",
        "\"15m\"",
        "\"never\"",
        "\"\"\"",
        "'",
        "{",
        "}",
        "[",
        "]",
        ",",
        "#",
        "0",
        "5",
        "1000",
        "-1",
        "18446744073709551616",
        "1e9",
        "true",
        "\"unix:/x\"",
        "\t",
        "é",
        "\u{0}",
        "\u{1b}",
        "\u{2028}",
        "\\",
        "\\u0000",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// One edit of a text: a byte range removed, a piece inserted, a line doubled or two swapped.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(prop::sample::Index, u8),
    Insert(prop::sample::Index, String),
    DoubleLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    ReplaceChar(prop::sample::Index, char),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<prop::sample::Index>(),
            prop_oneof![tomlish(), any::<String>()]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<prop::sample::Index>().prop_map(Mutation::DoubleLine),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<prop::sample::Index>(), any::<char>())
            .prop_map(|(i, c)| Mutation::ReplaceChar(i, c)),
    ]
}

/// The nearest char boundary at or before `i`.
fn boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut out = text.to_string();
    match m {
        Mutation::Delete(at, n) => {
            let start = boundary(&out, at.index(out.len() + 1));
            let end = boundary(&out, (start + *n as usize).min(out.len()));
            out.replace_range(start..end, "");
        }
        Mutation::Insert(at, piece) => {
            let at = boundary(&out, at.index(out.len() + 1));
            out.insert_str(at, piece);
        }
        Mutation::DoubleLine(at) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = at.index(lines.len());
                lines.insert(i, lines[i]);
            }
            out = lines.join("\n");
        }
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
            }
            out = lines.join("\n");
        }
        Mutation::ReplaceChar(at, c) => {
            if !out.is_empty() {
                let start = boundary(&out, at.index(out.len()));
                let len = out[start..].chars().next().map_or(0, char::len_utf8);
                out.replace_range(start..start + len, &c.to_string());
            }
        }
    }
    out
}

const SECTIONS: [&str; 8] = [
    "hashing", "password", "lockout", "rate", "codes", "sessions", "audit", "limits",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        parses_cleanly(&text)?;
    }

    #[test]
    fn toml_like_text_never_panics(text in tomlish()) {
        parses_cleanly(&text)?;
    }

    /// A generated valid config parses, to the values it names and the defaults for the rest.
    #[test]
    fn valid_configs_parse_to_their_values(c in gen_config()) {
        let parsed = match parse(&c.text)? {
            Ok(parsed) => parsed,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{}", c.text))),
        };
        let defaults = Config::default();
        prop_assert_eq!(
            parsed.hashing.iterations,
            c.iterations.unwrap_or(defaults.hashing.iterations)
        );
        let (min, max) = c
            .lengths
            .unwrap_or((defaults.password.min_length, defaults.password.max_length));
        prop_assert_eq!((parsed.password.min_length, parsed.password.max_length), (min, max));
        prop_assert_eq!(parsed.lockout.deny, c.deny.unwrap_or(defaults.lockout.deny));
        prop_assert_eq!(
            parsed.lockout.unlock_time,
            c.unlock_time.unwrap_or(defaults.lockout.unlock_time)
        );
        prop_assert_eq!(parsed.codes.ttl, c.ttl.unwrap_or(defaults.codes.ttl));
        prop_assert_eq!(
            parsed.limits.idle_timeout,
            c.idle_timeout.unwrap_or(defaults.limits.idle_timeout)
        );
        let host = c.host.unwrap_or((defaults.rate.host.burst, defaults.rate.host.per_minute));
        prop_assert_eq!((parsed.rate.host.burst, parsed.rate.host.per_minute), host);
        prop_assert_eq!(parsed.audit.syslog, c.syslog.unwrap_or(defaults.audit.syslog));
        prop_assert_eq!(parsed.rate.account, defaults.rate.account);
    }

    /// A valid config after a few random edits parses, or says why on one line.
    #[test]
    fn mutated_configs_parse_or_give_a_one_line_error(
        c in gen_config(),
        edits in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut text = c.text.clone();
        for edit in &edits {
            text = apply(&text, edit);
        }
        parses_cleanly(&text)?;
    }

    /// Strict: an unknown key in any section is refused, and the message names it.
    #[test]
    fn an_unknown_key_is_named(
        c in gen_config(),
        section in prop::sample::select(SECTIONS.to_vec()),
        key in "zz[a-z_]{3,12}",
        value in prop::sample::select(vec!["1", "true", "\"x\"", "{ a = 1 }"]),
    ) {
        let text = format!("{}[{section}]\n{key} = {value}\n", c.text);
        let text = if c.text.contains(&format!("[{section}]\n")) {
            // A table may be defined once: add the key to the existing one instead.
            c.text.replacen(&format!("[{section}]\n"), &format!("[{section}]\n{key} = {value}\n"), 1)
        } else {
            text
        };
        match parse(&text)? {
            Ok(_) => prop_assert!(false, "accepted an unknown key:\n{}", text),
            Err(e) => prop_assert!(e.contains(&key), "{} does not name {}", e, key),
        }
    }
}
