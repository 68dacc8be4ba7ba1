//! `berth api` end to end: the real binary serving the admin API on a free loopback port,
//! answering plain HTTP, and stopping cleanly on SIGTERM.

mod common;

#[test]
fn serves_the_admin_api_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let server = common::Server::start(&["--store", store.to_str().expect("utf-8"), "api"]);

    let (status, _, body) = server.request("GET", "/api/v1/models", None);
    assert_eq!(status, 200);
    assert!(body.contains("[]"), "{body}");
    let (status, _, body) = server.request("GET", "/api/v1/models/nope", None);
    assert_eq!(status, 404);
    assert!(body.contains("model 'nope' does not exist"), "{body}");
    let (status, _, body) = server.request("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"openapi\"") && body.contains("/api/v1/history"),
        "{body}"
    );

    let (status, rest) = server.stop();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    assert!(rest.contains("stopped"), "{rest}");
}
