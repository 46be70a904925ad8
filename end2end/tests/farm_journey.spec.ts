// A shop-floor journey on a real 3-node cluster: printer, spool and two jobs created in
// the browser, an over-reservation refused next to the weight field, a job moved to
// Done and the spool's remaining weight dropping; a screenshot of every page.
import { test, expect } from "./fixtures/test";

test("create a farm, refuse an over-reservation, finish a job", async ({ cluster, dashboard, page }) => {
  // Arrange: open the dashboard on a follower, so writes must find the leader.
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(follower));
  await expect(dashboard.connection()).toContainText(`Node ${follower}`);

  // Act + assert: a printer and a 1000 g spool.
  await dashboard.addPrinter("Prusa", "MK4");
  const spool = await dashboard.addSpool("Galaxy Black", 1000);
  await expect(dashboard.spoolRow(spool).getByTestId("available")).toHaveText("1\u202f000 g");

  // Two jobs reserving 300 g + 250 g.
  await dashboard.queueJob("MK4", "Galaxy Black", "benchy.gcode", 300);
  await dashboard.queueJob("MK4", "Galaxy Black", "gearbox.gcode", 250);
  await expect(dashboard.column("queued").getByRole("listitem")).toHaveCount(2);

  // Over-reserve: 500 g more than the 450 g still available → error next to the weight.
  await dashboard.fillJob("MK4", "Galaxy Black", "too-big.gcode", 500);
  await dashboard.jobForm().getByRole("button", { name: "Queue job" }).click();
  const weightError = page.getByTestId("job-print_weight_in_grams-error");
  await expect(weightError).toContainText("450 g available");
  await expect(dashboard.jobForm().getByLabel("Weight (g)")).toHaveAttribute("aria-invalid", "true");
  await expect(dashboard.jobCard("queued", "too-big.gcode")).toHaveCount(0);
  // The form keeps what was typed, so the user can correct it.
  await expect(dashboard.jobForm().getByLabel("File")).toHaveValue("too-big.gcode");

  // Client-side rules: a blank file path is refused before anything is sent.
  await dashboard.jobForm().getByLabel("File").fill("");
  await dashboard.jobForm().getByRole("button", { name: "Queue job" }).click();
  await expect(page.getByTestId("job-filepath-error")).not.toBeEmpty();

  // Only the allowed moves are offered: a queued job can start or be canceled, and move
  // in the queue (benchy, queued first, only down).
  const queued = dashboard.jobCard("queued", "benchy.gcode");
  await expect(queued.getByRole("button")).toHaveText(["Start", "Cancel", "Move up", "Move down", "To top"]);
  await expect(queued.getByRole("button", { name: "Move up" })).toBeDisabled();
  await expect(queued.getByRole("button", { name: "Move down" })).toBeEnabled();

  // Queued → Running → Done; the spool's remaining drops by 300 g.
  await dashboard.moveJob("benchy.gcode", "queued", "Start", "running");
  await expect(dashboard.jobCard("running", "benchy.gcode").getByRole("button")).toHaveText(["Done", "Cancel"]);
  await dashboard.moveJob("benchy.gcode", "running", "Done", "done");
  await expect(dashboard.jobCard("done", "benchy.gcode").getByRole("button")).toHaveCount(0);

  await dashboard.go("Filament");
  const row = dashboard.spoolRow(spool);
  await expect(row.getByTestId("remaining")).toHaveText("700 g / 1\u202f000 g");
  await expect(row.getByTestId("reserved")).toHaveText("250 g");
  await expect(row.getByTestId("available")).toHaveText("450 g");

  // The write reached every node: the API of each one agrees.
  for (const id of [1, 2, 3]) {
    const spools = await cluster.getJson<{ remaining_weight_in_grams: number }[]>(id, "/api/v1/filaments");
    expect(spools.map((s) => s.remaining_weight_in_grams)).toEqual([700]);
  }

  // Every page, for the record.
  await dashboard.screenshot("filament");
  await dashboard.go("Overview");
  await expect(page.getByTestId("printers-idle")).toHaveText("1");
  await expect(page.getByTestId("jobs-done")).toHaveText("1");
  await dashboard.screenshot("overview");
  await dashboard.go("Printers");
  await dashboard.screenshot("printers");
  await dashboard.go("Job board");
  await dashboard.screenshot("job-board");
  await dashboard.go("Cluster");
  await expect(page.getByTestId("cluster-table").getByRole("row")).toHaveCount(4);
  await expect(page.getByTestId(`node-${leader}`)).toContainText("leader");
  await expect(page.getByTestId(`node-${follower}`)).toContainText("this browser");
  for (const id of [1, 2, 3]) {
    await expect(page.getByTestId(`node-${id}`).getByTestId("answers")).toContainText("yes");
  }
  await dashboard.screenshot("cluster");
});

test.describe("a cluster whose pages may show the farm without a token", () => {
  // A page is a navigation, which carries no token: only `--anonymous-reads` (a wall
  // screen) lets a node render the farm into it. Without it, see security.spec.ts.
  test.use({ serveArgs: ["--anonymous-reads"] });

  test("the first page arrives rendered with the node's data", async ({ cluster, dashboard, page }) => {
    // Arrange: a printer written through the API, to the leader (a follower's 307 to
    // another origin would make fetch drop the Authorization header).
    const leader = await cluster.waitForLeader();
    const created = await cluster.api(leader, "/api/v1/printers", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "p-ssr", company: "Bambu", model: "X1C" }),
    });
    expect(created.status).toBe(201);

    // Act + assert: with JavaScript off, every node's page already lists the printer
    // (each node renders its own applied copy; followers apply within a heartbeat).
    const context = await page.context().browser()!.newContext({ javaScriptEnabled: false });
    const bare = await context.newPage();
    for (const id of [1, 2, 3]) {
      await expect
        .poll(async () => {
          await bare.goto(`${cluster.url(id)}/printers`);
          return bare.getByTestId("printer-p-ssr").count();
        })
        .toBe(1);
      await expect(bare.getByTestId("connection")).toContainText(`Node ${id}`);
    }
    await context.close();

    // And with JavaScript on, the hydrated page shows the same row.
    await dashboard.open(cluster.url(1), "/printers");
    await expect(page.getByTestId("printer-p-ssr")).toContainText("X1C");
  });
});
