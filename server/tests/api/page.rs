//! The dashboard's first page as the node renders it: stored text must not be able to
//! change how a browser parses the page.

use crate::helpers::spawn_node;

#[tokio::test]
async fn a_printer_named_like_markup_cannot_break_the_page() {
    let node = spawn_node().await;
    let body = r#"{"id": "p1", "company": "<!--<script>", "model": "</script><b>"}"#;
    let created = node.post("/api/v1/printers", body).await;
    assert_eq!(created.status(), 201);

    let page = node.get("/printers").await.text().await.expect("page");
    // The farm's JSON sits in <script type="application/json" id="raft3d-initial">: up to
    // the element's end it must hold no markup at all, or the HTML parser may read past
    // the `</script>` (after `<!--<script>` it does) and the page goes blank.
    let start = page
        .find(r#"id="raft3d-initial">"#)
        .expect("the initial data element");
    let data = &page[start..];
    let data = &data[data.find('>').expect("tag end") + 1..data.find("</script>").expect("end")];
    assert!(
        data.contains("p1"),
        "the printer is in the page's data: {data}"
    );
    assert!(!data.contains('<'), "markup inside the page's data: {data}");
    // And the rest of the page (the hydration scripts, the app) is still there after it.
    assert!(page.matches("<script").count() >= 2, "{page}");
}
