//! `berth drift compare` end to end: the real binary on the drift fixtures.

mod common;

use std::process::Output;

use common::{berth, fixtures, path};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_table_flags_the_shifted_features_and_writes_an_html_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("report.html");
    let out = berth(&[
        "drift",
        "compare",
        path(&fixtures().join("drift/reference_10k.parquet")),
        path(&fixtures().join("drift/current_10k.parquet")),
        "--html",
        path(&html),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let drifted: Vec<&str> = text
        .lines()
        // COLUMN TYPE METHOD SCORE THRESHOLD(2 words) DRIFT
        .filter(|l| l.split_whitespace().nth(6) == Some("yes"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(drifted, ["income", "plan", "tenure"], "{text}");
    assert!(
        text.contains("data set: no drift — 3 of 20 columns drifted (15.0%)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("COLUMN") && l.contains("THRESHOLD"))
    );
    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 20);
    // Self-contained: nothing fetched from elsewhere.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
    // Drifted columns come first.
    let first = page.find("<section").expect("sections");
    assert!(page[first..].starts_with("<section id=\"col-income\" class=\"drift\""));
}

#[test]
fn json_output_carries_every_statistic() {
    let dir = fixtures().join("drift/oracle");
    let out = berth(&[
        "drift",
        "compare",
        path(&dir.join("small_reference.csv")),
        path(&dir.join("small_current.csv")),
        "--format",
        "json",
        "--method",
        "psi",
        "--threshold",
        "0.2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let columns = report["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), 5);
    for c in columns {
        assert_eq!(c["method"], "psi");
        assert!(c["statistics"]["jensen_shannon"].is_number());
    }
    let x = columns.iter().find(|c| c["column"] == "x").expect("x");
    assert!(x["statistics"]["ks"]["p_value"].is_number());
}

#[test]
fn schema_changes_are_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (r, c) = (dir.path().join("r.csv"), dir.path().join("c.csv"));
    std::fs::write(&r, "a,b,gone\n1,x,1\n2,y,2\n3,x,3\n").expect("write");
    std::fs::write(&c, "a,b,new\n1,5,1\n2,6,2\n,7,3\n").expect("write");
    let out = berth(&["drift", "compare", path(&r), path(&c)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("schema: added new"), "{text}");
    assert!(text.contains("schema: gone gone"), "{text}");
    // b is text in the reference, so the current file's numbers are read as categories.
    assert!(
        text.lines()
            .any(|l| l.starts_with("b ") && l.contains("categorical")),
        "{text}"
    );
}

#[test]
fn unreadable_input_exits_2_with_a_message() {
    let out = berth(&[
        "drift",
        "compare",
        "/nonexistent/ref.parquet",
        "/nonexistent/cur.parquet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/ref.parquet"), "{err}");
    let out = berth(&["drift", "compare", "a.xlsx", "b.xlsx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported file type"));
    let out = berth(&["drift", "compare", "a.csv", "b.csv", "--method", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}
