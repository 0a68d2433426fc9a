//! `docket bench pipeline` through the built binary, with the test model: the figures a
//! round reports (both raw passes, the model's batches in the pipeline, int8 beside f32),
//! and the refusal of `--int8` without the local model in f32.

use std::process::Output;

mod common;

fn bench(dir: &std::path::Path, set: &[&str], extra: &[&str]) -> Output {
    let mut cmd = common::docket_in(dir);
    for s in set {
        cmd.args(["--set", s]);
    }
    cmd.args(["bench", "pipeline", "--documents", "3", "--words", "300"])
        .args(["--repeat", "1", "--python", "/bin/false"])
        .args(extra);
    cmd.output().unwrap()
}

#[test]
fn a_round_reports_the_models_batches_and_int8_beside_f32() {
    let dir = tempfile::tempdir().unwrap();
    let model = docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"));
    let model = format!("embed.model={}", model.display());
    let out = bench(dir.path(), &["embed.provider=local", &model], &["--int8"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(report["kernel"], "f32");
    assert_eq!(report["pipeline"]["failed"], serde_json::json!([]));
    let chunks = report["chunks"].as_u64().unwrap();
    assert!(chunks >= 6, "{chunks} chunks");
    // The raw model is timed twice in the round, bracketing the other phases.
    let raw = &report["raw_model"]["runs"][0];
    assert_eq!(raw["seconds"].as_array().unwrap().len(), 2, "{raw}");
    // The model's figures in the pipeline: every chunk went through some batch.
    let m = &report["pipeline"]["runs"][0]["model"];
    let batches = m["batches"].as_f64().unwrap();
    let mean = m["mean_batch"].as_f64().unwrap();
    assert!(
        batches >= 1.0 && (batches * mean - chunks as f64).abs() < 0.5,
        "{m}"
    );
    let share = m["busy_share"].as_f64().unwrap();
    assert!(share > 0.0 && share <= 1.0, "{m}");
    assert!(m["first_batch_at_s"].as_f64().unwrap() <= m["last_batch_end_s"].as_f64().unwrap());
    // int8 beside f32, on whichever kernel this CPU offers.
    let int8 = &report["int8"];
    assert!(
        ["amx", "avx512-vnni", "portable"].contains(&int8["kernel"].as_str().unwrap()),
        "{int8}"
    );
    assert!(
        int8["int8_vs_f32"]["median"].as_f64().unwrap() > 0.0,
        "{int8}"
    );
    assert_eq!(int8["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn int8_needs_the_local_model_in_f32() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(dir.path(), &["embed.provider=hashing"], &["--int8"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--int8 compares with the local model in f32"),
        "{stderr}"
    );
}
