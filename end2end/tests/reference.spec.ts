// The API's reference page: linked from the dashboard's navigation, served by the node
// itself (no CDN, no script), open without a token, and a view of the same OpenAPI
// document the node serves at /api/v1/openapi.json.
import { test, expect } from "./fixtures/test";

test("the dashboard links the API reference, which needs no token and no network", async ({ cluster, dashboard, page }) => {
  const leader = await cluster.waitForLeader();
  const url = cluster.url(leader);
  // Nothing from outside the node may load: fail any request to another origin.
  const foreign: string[] = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(url)) foreign.push(request.url());
  });
  await dashboard.open(url);
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "API" }).click();
  await expect(page).toHaveURL(`${url}/api/v1/reference`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Raft3D API");

  // Every operation of the document has its section on the page.
  const doc = await (await fetch(`${url}/api/v1/openapi.json`)).json();
  const ids = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>)
    .flatMap((item) => Object.values(item).map((op) => op.operationId));
  expect(ids.length).toBeGreaterThan(20);
  for (const id of ids) await expect(page.locator(`section#${id}`)).toHaveCount(1);
  await dashboard.screenshot("api-reference");
  expect(foreign).toEqual([]);
});
