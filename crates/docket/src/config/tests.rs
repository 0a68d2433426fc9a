//! The configuration's sections, defaults and checks.
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_valid_and_sqlite() {
    let c = Config::load_from(None, &[]).unwrap();
    assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
    assert_eq!(c.worker.concurrency, 100);
}

#[test]
fn env_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docket.toml");
    std::fs::write(&f, "[worker]\nconcurrency = 7\nqueues = [\"a\"]\n").unwrap();
    let c = Config::load_from(
        Some(&f),
        &env(&[
            ("DOCKET_WORKER__CONCURRENCY", "9"),
            ("DOCKET_DATABASE_URL", "postgres://u:pw@localhost/db"),
            ("DOCKET_TEST_DATABASE_URL", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(c.worker.concurrency, 9);
    assert_eq!(c.worker.queues, vec!["a"]);
    let per_queue = Config::load_from(
        Some(&f),
        &env(&[("DOCKET_WORKER__QUEUE_CONCURRENCY__A", "3")]),
    )
    .unwrap();
    assert_eq!(per_queue.runtime().unwrap().queues[0].concurrency, 3);
    assert!(
        c.to_masked_toml()
            .contains("postgres://u:****@localhost/db")
    );
    assert!(!c.to_masked_toml().contains("pw"));
}

#[test]
fn embed_section_has_a_default_provider_and_reembed_on_change() {
    let c = Config::load_from(None, &[]).unwrap();
    assert!(c.embed.reembed_on_change);
    // Without `provider`: the default local model, not chosen explicitly (so it is used
    // only when its files are on disk; see pipeline::choose_embedder).
    match &c.embed.provider {
        EmbedConfig::Local(l) => {
            assert_eq!(l, &docket_embed::local::LocalConfig::default())
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.embed.explicit);
    assert_eq!(c.embed, EmbedSection::default());
    // The default provider's settings alone keep it the default.
    let c = Config::load_with(
        None,
        &[],
        &[
            "embed.model=/srv/models/minilm".into(),
            "embed.batch_size=8".into(),
        ],
    )
    .unwrap();
    match &c.embed.provider {
        EmbedConfig::Local(l) => {
            assert_eq!((l.model.as_str(), l.batch_size), ("/srv/models/minilm", 8))
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.embed.explicit);
    // Settings only `hashing` has choose it, as when it was the default.
    let c = Config::load_with(None, &[], &["embed.dimensions=256".into()]).unwrap();
    match &c.embed.provider {
        EmbedConfig::Hashing(h) => assert_eq!(h.dimensions, 256),
        other => panic!("{other:?}"),
    }
    assert!(c.embed.explicit);
    // A provider named is explicit, whichever it is.
    for (provider, local) in [("hashing", false), ("local", true)] {
        let c = Config::load_from(None, &env(&[("DOCKET_EMBED__PROVIDER", provider)])).unwrap();
        assert!(c.embed.explicit, "{provider}");
        assert_eq!(matches!(c.embed.provider, EmbedConfig::Local(_)), local);
    }
    let c = Config::load_with(
        None,
        &env(&[("DOCKET_EMBED__REEMBED_ON_CHANGE", "false")]),
        &[],
    )
    .unwrap();
    assert!(!c.embed.reembed_on_change);
    // `docket config` shows it, and its output loads back: with no provider line while
    // none was chosen, with one when it was.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docket.toml");
    let explicit = Config::load_with(None, &[], &["embed.provider=hashing".into()]).unwrap();
    for c in [c, explicit] {
        let shown = c.to_masked_toml();
        let reembed = format!("reembed_on_change = {}", c.embed.reembed_on_change);
        assert!(shown.contains(&reembed), "{shown}");
        assert_eq!(shown.contains("provider = "), c.embed.explicit, "{shown}");
        std::fs::write(&f, &shown).unwrap();
        assert_eq!(Config::load_from(Some(&f), &[]).unwrap().embed, c.embed);
    }
    let e = Config::load_with(None, &[], &["embed.reembed_on_change=sometimes".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("embed.reembed_on_change must be true or false"),
        "{e}"
    );
    let e = Config::load_with(None, &[], &["embed.dimensionz=3".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dimensionz"), "{e}");
    assert!(e.contains("set embed.provider"), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("docket.toml");
    std::fs::write(&f, "[worker]\nconcurency = 7\n").unwrap();
    let e = Config::load_from(Some(&f), &[]).unwrap_err().to_string();
    assert!(e.contains("concurency"), "{e}");
    let set = Config::load_with(
        None,
        &env(&[("DOCKET_WORKER__CONCURRENCY", "9")]),
        &[
            "worker.concurrency=3".into(),
            "fetch.allow_private=true".into(),
        ],
    )
    .unwrap();
    assert_eq!(set.worker.concurrency, 3, "flags override the environment");
    assert!(set.fetch.allow_private);
    for bad in ["worker.concurrency", "worker..x=1", "worker.nope=1"] {
        assert!(
            Config::load_with(None, &[], &[bad.into()]).is_err(),
            "--set {bad} is refused"
        );
    }
    let e = Config::load_from(None, &env(&[("DOCKET_NOPE", "1")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = Config::load_from(
        None,
        &env(&[
            ("DOCKET_MAINTENANCE__CLEANUP_CRON", "99 * * * *"),
            ("DOCKET_WORKER__CONCURRENCY", "0"),
            ("DOCKET_LOG__FORMAT", "xml"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cleanup_cron"), "{e}");
    assert!(e.contains("concurrency"), "{e}");
    assert!(e.contains("log.format"), "{e}");
}

#[test]
fn storage_urls_are_checked_at_start_and_the_secret_masked() {
    let bad = |pairs: &[(&str, &str)]| match Config::load_from(None, &env(pairs)) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(
        bad(&[("DOCKET_STORAGE__URL", "ftp://x/y")]).contains(
            "must be file or s3 (got ftp) (from environment variable DOCKET_STORAGE__URL)"
        ),
        "a scheme of neither kind"
    );
    assert!(bad(&[("DOCKET_STORAGE__URL", "file://relative")]).contains("absolute path"));
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("not-yet");
    let url = format!("file://{}", folder.display());
    assert_eq!(bad(&[("DOCKET_STORAGE__URL", &url)]), "");
    assert!(!folder.exists(), "checking creates nothing");
    let c = Config::load_from(
        None,
        &env(&[
            ("DOCKET_STORAGE__URL", "s3://bucket/prefix"),
            ("DOCKET_STORAGE__S3__ENDPOINT", "http://127.0.0.1:9"),
            ("DOCKET_STORAGE__S3__ACCESS_KEY_ID", "key-id"),
            ("DOCKET_STORAGE__S3__SECRET_ACCESS_KEY", "very-secret"),
        ]),
    )
    .unwrap();
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    let shown = c.to_masked_toml();
    assert!(
        shown.contains("s3://bucket/prefix") && shown.contains("key-id"),
        "{shown}"
    );
    assert!(!shown.contains("very-secret"), "{shown}");
}
