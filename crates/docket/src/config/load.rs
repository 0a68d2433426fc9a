//! Reading the configuration: the file, then `DOCKET_*` variables, then flags, each value
//! remembered with where it came from, so that every problem names its real source (the file
//! and key, the variable, or the flag) and every problem is reported at once: a value of the
//! wrong type is noted, set aside, and reading goes on.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_path_to_error::Segment;

use super::Config;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// A key in the configuration file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// `--set KEY=…`, by key (its value may be a secret).
    Set(String),
    /// `--database-url`.
    DatabaseUrlFlag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Set(key) => write!(f, "--set {key}"),
            Origin::DatabaseUrlFlag => f.write_str("--database-url"),
        }
    }
}

/// The merged settings and, for each key set anywhere, where its value came from.
#[derive(Default)]
struct Sources {
    table: toml::Table,
    /// Dotted key → origin of its current value.
    origins: BTreeMap<String, Origin>,
    /// Dotted key → the text a variable or flag gave, read as TOML (`2024` a number): kept to
    /// be read as a string where the key wants one (a secret of digits).
    texts: BTreeMap<String, String>,
}

impl Sources {
    fn set(&mut self, path: &[String], value: toml::Value, origin: Origin) {
        // A value replaces everything recorded under its key.
        let key = path.join(".");
        let below = format!("{key}.");
        self.origins
            .retain(|k, _| k != &key && !k.starts_with(&below));
        self.texts
            .retain(|k, _| k != &key && !k.starts_with(&below));
        self.record(&key, &value, &origin);
        set_path(&mut self.table, path, value);
    }

    fn record(&mut self, key: &str, value: &toml::Value, origin: &Origin) {
        match value {
            toml::Value::Table(t) if !t.is_empty() => {
                for (k, v) in t {
                    self.record(&format!("{key}.{k}"), v, origin);
                }
            }
            _ => {
                self.origins.insert(key.to_owned(), origin.clone());
            }
        }
    }

    /// Where the value at `key` (or the values under it, or the table holding it) came from.
    fn origins_of(&self, key: &str) -> Vec<&Origin> {
        if let Some(o) = self.origins.get(key) {
            return vec![o];
        }
        let below = format!("{key}.");
        let mut found: Vec<&Origin> = self
            .origins
            .iter()
            .filter(|(k, _)| k.starts_with(&below))
            .map(|(_, o)| o)
            .collect();
        if found.is_empty() {
            // Set as a whole further up (`--set worker={…}`).
            let mut up = key;
            while let Some((parent, _)) = up.rsplit_once('.') {
                if let Some(o) = self.origins.get(parent) {
                    return vec![o];
                }
                up = parent;
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// `problem`, followed by where the values of `keys` came from.
    fn attribute<'k>(&self, keys: impl IntoIterator<Item = &'k str>, problem: &str) -> String {
        let mut origins: Vec<&Origin> = keys.into_iter().flat_map(|k| self.origins_of(k)).collect();
        origins.sort();
        origins.dedup();
        if origins.is_empty() {
            return problem.to_owned();
        }
        let from: Vec<String> = origins.iter().map(ToString::to_string).collect();
        format!("{problem} (from {})", from.join(", "))
    }
}

impl Config {
    /// Reads `file` (if given, else `docket.toml` when it exists), then the environment, then
    /// `sets` (`key.path=value`, from `--set`), then `database_url` (`--database-url`).
    pub fn load(
        file: Option<&Path>,
        sets: &[String],
        database_url: Option<&str>,
    ) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        load(file, &env, sets, database_url)
    }

    /// [`Config::load`] with an explicit environment and no flags.
    #[cfg(test)]
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Config> {
        load(file, env, &[], None)
    }

    /// [`Config::load`] with an explicit environment.
    #[cfg(test)]
    pub fn load_with(
        file: Option<&Path>,
        env: &[(String, String)],
        sets: &[String],
    ) -> anyhow::Result<Config> {
        load(file, env, sets, None)
    }
}

fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    sets: &[String],
    database_url: Option<&str>,
) -> anyhow::Result<Config> {
    let path: Option<PathBuf> = match file {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from("docket.toml")).filter(|p| p.exists()),
    };
    let mut sources = Sources::default();
    if let Some(p) = &path {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading config file {}", p.display()))?;
        let table = text
            .parse::<toml::Table>()
            .with_context(|| format!("parsing config file {}", p.display()))?;
        for (k, v) in table {
            sources.set(&[k], v, Origin::File(p.clone()));
        }
    }
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("DOCKET_") else {
            continue;
        };
        // The test suite's own settings, and the variables that are not configuration keys:
        // the config file's path, the HTTP client commands' server and key, and the browser
        // the dashboard's test drives.
        if rest.starts_with("TEST_") || matches!(rest, "CONFIG" | "SERVER" | "API_KEY" | "CHROMIUM")
        {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        sources.set(&path, parse_value(v), Origin::Env(k.clone()));
        sources.texts.insert(path.join("."), v.clone());
    }
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            bail!("--set {set:?}: expected KEY=VALUE, e.g. --set worker.concurrency=4");
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            bail!("--set {set:?}: the key has an empty part");
        }
        let origin = Origin::Set(key.trim().to_owned());
        sources.set(&path, parse_value(value.trim()), origin);
        sources
            .texts
            .insert(path.join("."), value.trim().to_owned());
    }
    if let Some(url) = database_url {
        let value = toml::Value::String(url.to_owned());
        sources.set(&["database_url".to_owned()], value, Origin::DatabaseUrlFlag);
    }

    let (config, mut problems) = deserialize(&sources);
    if let Some(config) = &config {
        for problem in config.problems() {
            // The keys a problem names: those of the values that were set.
            // The keys a problem names, and those under the section it starts with
            // (`notify.webhook: …`).
            let section = problem
                .split_once(": ")
                .map(|(s, _)| format!("{s}."))
                .filter(|s| !s.contains(' '));
            let named: Vec<&String> = sources
                .origins
                .keys()
                .filter(|k| {
                    names_key(&problem, k) || section.as_ref().is_some_and(|s| k.starts_with(s))
                })
                .collect();
            problems.push(sources.attribute(named.iter().map(|k| k.as_str()), &problem));
        }
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => bail!("invalid configuration:\n  - {}", problems.join("\n  - ")),
    }
}

/// Deserializes the merged table. A value that does not fit is reported and removed, and
/// deserializing starts again without it, so that every such problem is found in one run.
fn deserialize(sources: &Sources) -> (Option<Config>, Vec<String>) {
    let mut table = sources.table.clone();
    let mut problems = Vec::new();
    // Each round removes one key or reads one as text, so the keys set bound the rounds.
    for _ in 0..=2 * sources.origins.len() {
        let e = match serde_path_to_error::deserialize::<_, Config>(table.clone()) {
            Ok(config) => return (Some(config), problems),
            Err(e) => e,
        };
        let mut path: Vec<String> = Vec::new();
        for segment in e.path().iter() {
            match segment {
                Segment::Map { key } => path.push(key.clone()),
                // A variant is not a key of the table.
                Segment::Enum { .. } => {}
                // A list is one value: remove it whole.
                Segment::Seq { .. } | Segment::Unknown => break,
            }
        }
        let mut message = e.inner().message().trim().to_owned();
        // A section read by hand (`[embed]`) names the key at fault itself: `embed.x: …`.
        let prefix = format!("{}.", path.join("."));
        if !path.is_empty()
            && let Some(rest) = message.strip_prefix(&prefix)
            && let Some((sub, what)) = rest.split_once(": ")
            && sub
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            path.extend(sub.split('.').map(str::to_owned));
            message = what.to_owned();
        } else if let Some(field) = unknown_field(&message)
            && path.last() != Some(&field)
        {
            path.push(field);
        }
        let key = path.join(".");
        // `DOCKET_NOTIFY__WEBHOOK__SECRET=2024` reads as a number; the key wants text.
        if message.starts_with("invalid type:")
            && message.ends_with("expected a string")
            && let Some(text) = sources.texts.get(&key)
            && !matches!(table_get(&table, &path), Some(toml::Value::String(_)))
        {
            set_path(&mut table, &path, toml::Value::String(text.clone()));
            continue;
        }
        let problem = if key.is_empty() {
            message
        } else {
            sources.attribute([key.as_str()], &format!("{key}: {message}"))
        };
        problems.push(problem);
        if path.is_empty() || !remove_path(&mut table, &path) {
            break;
        }
    }
    (None, problems)
}

/// `foo` from serde's "unknown field `foo`, expected …".
pub(super) fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split_once('`')?.0.to_owned())
}

/// Whether `text` names `key` as a whole (not as part of a longer key).
fn names_key(text: &str, key: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(key).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = &text[i + key.len()..];
        // A full stop may end the sentence; a dot followed by a word goes on to a longer key.
        let longer =
            after.starts_with(word) || (after.starts_with('.') && after[1..].starts_with(word));
        !before.is_some_and(|c| word(c) || c == '.') && !longer
    })
}

/// A value from the environment or a flag: TOML (`10`, `true`, `["a","b"]`), or a plain string
/// when it does not parse as TOML.
fn parse_value(v: &str) -> toml::Value {
    format!("x = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("x"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

/// The value at `path`.
fn table_get<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for p in parents {
        t = t.get(p)?.as_table()?;
    }
    t.get(last)
}

/// Removes the value at `path`; false when there was none.
fn remove_path(table: &mut toml::Table, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => table.remove(last).is_some(),
        [first, rest @ ..] => match table.get_mut(first) {
            Some(toml::Value::Table(t)) => remove_path(t, rest),
            Some(_) => table.remove(first).is_some(),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn problems(e: anyhow::Error) -> Vec<String> {
        let text = e.to_string();
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  - "))
            .map(str::to_owned)
            .collect();
        assert!(!lines.is_empty(), "{text}");
        lines
    }

    fn one_with<'a>(problems: &'a [String], needle: &str) -> &'a str {
        let found: Vec<&String> = problems.iter().filter(|p| p.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one problem naming {needle}: {problems:#?}");
        found[0]
    }

    #[test]
    fn each_problem_names_where_its_value_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("docket.toml");
        std::fs::write(
            &f,
            "[worker]\npoll_interval_ms = \"soon\"\n[log]\nformat = \"xml\"\n",
        )
        .unwrap();
        let e = load(
            Some(&f),
            &env(&[
                ("DOCKET_WORKER__CONCURRENCY", "abc"),
                ("DOCKET_CHUNK__MAX_TOKENS", "0"),
            ]),
            &["fetch.timeout_secs=forever".into()],
            Some("mysql://u:secret@h/db"),
        )
        .unwrap_err();
        let p = problems(e);
        // Type errors, all of them, each with its key and source.
        let env = one_with(&p, "worker.concurrency");
        assert!(
            env.contains("from environment variable DOCKET_WORKER__CONCURRENCY"),
            "{env}"
        );
        let file = one_with(&p, "worker.poll_interval_ms");
        assert!(file.contains(&format!("from {}", f.display())), "{file}");
        let flag = one_with(&p, "fetch.timeout_secs");
        assert!(flag.contains("from --set fetch.timeout_secs"), "{flag}");
        // Checks of values that did fit, with theirs.
        let format = one_with(&p, "log.format");
        assert!(
            format.contains(&format!("from {}", f.display())),
            "{format}"
        );
        let chunk = one_with(&p, "chunk.max_tokens");
        assert!(
            chunk.contains("from environment variable DOCKET_CHUNK__MAX_TOKENS"),
            "{chunk}"
        );
        let url = one_with(&p, "database_url");
        assert!(url.contains("from --database-url"), "{url}");
        assert!(!url.contains("secret"), "{url}");
        assert_eq!(p.len(), 6, "{p:#?}");
        // Nothing blames the file for what the environment set.
        assert!(!p.iter().any(|l| l.contains("(docket.toml)")), "{p:#?}");
    }

    #[test]
    fn unknown_keys_name_their_source_too() {
        let e = load(
            None,
            &env(&[("DOCKET_WORKER__CONCURENCY", "4")]),
            &["embed.provider=hashing".into(), "fetch.nope=1".into()],
            None,
        )
        .unwrap_err();
        let p = problems(e);
        let env = one_with(&p, "concurency");
        assert!(
            env.contains("worker.concurency") && env.contains("DOCKET_WORKER__CONCURENCY"),
            "{env}"
        );
        let flag = one_with(&p, "nope");
        assert!(flag.contains("--set fetch.nope"), "{flag}");
    }

    #[test]
    fn a_key_is_named_only_as_a_whole() {
        assert!(names_key(
            "worker.concurrency must be positive",
            "worker.concurrency"
        ));
        assert!(names_key("(got worker.concurrency)", "worker.concurrency"));
        assert!(!names_key("worker.concurrency_x", "worker.concurrency"));
        assert!(!names_key("my_worker.concurrency", "worker.concurrency"));
        assert!(!names_key("worker.concurrency.a", "worker.concurrency"));
    }
}
