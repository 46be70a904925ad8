// The farm queue in the browser, on a real 3-node cluster:
// - copies of an uploaded file for "any PLA red" on any printer, queued through the job
//   form, wait in the Queued column as the queue orders them; Move down, Move up and
//   To top reorder them, on screen and in `GET /api/v1/queue`, in the whole queue also
//   when the board is filtered to one printer;
// - a spool loaded on a printer through its "Loaded spool" select, refused (and said
//   so) on a second printer while the first has it, unloaded again; a printer connected
//   as clearing its own bed says so;
// - with a real OctoPrint (skipped unless `scripts/octoprint.sh install` has run): loading
//   the spool starts the first job; once it ends the printer waits for its bed to be
//   cleared and says so, the next job waits too, and "Bed is clear" sends it.
import { test, expect, Page } from "./fixtures/test";
import { Cluster } from "./fixtures/cluster";
import { gcode, Job, octoprintInstalled, OctoPrint, OCTOPRINT_KEY, onLeader, uploadFile } from "./fixtures/printing";

interface Printer {
  id: string;
  loaded_filament_id?: string;
  awaiting_clear?: { job_id: string; since?: string };
  connection?: { self_clearing: boolean };
}

async function printers(cluster: Cluster, ids: string[]): Promise<void> {
  for (const id of ids) {
    await onLeader(cluster, "POST", "/api/v1/printers", { id, company: "Prusa", model: `MK4 ${id}` });
  }
}

async function spool(cluster: Cluster, id: string, color: string): Promise<void> {
  await onLeader(cluster, "POST", "/api/v1/filaments", { id, type: "PLA", color, total_weight_in_grams: 1000 });
}

/// The farm queue's job ids, in its order, as node `node` answers.
async function queueIds(cluster: Cluster, node: number): Promise<string[]> {
  return (await cluster.getJson<Job[]>(node, "/api/v1/queue")).map((job) => job.id);
}

function printerRow(page: Page, id: string) {
  return page.getByTestId(`printer-${id}`);
}

test("queue copies for any PLA red in the form, reorder them, load a spool on a printer", async ({ cluster, dashboard, page }) => {
  // Arrange: two printers moved by hand (nothing is sent to them by itself) and two
  // spools; the page of a follower, so the writes go to the leader.
  await printers(cluster, ["p-a", "p-b"]);
  await spool(cluster, "pla-red", "red");
  await spool(cluster, "pla-white", "white");
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(follower), "/jobs");
  const form = dashboard.jobForm();

  // Act: upload a file in the form, then two copies of it for any spool of PLA red.
  await form.getByLabel("Upload G-code").setInputFiles({
    name: "hook.gcode",
    mimeType: "text/x-gcode",
    buffer: Buffer.from(gcode()),
  });
  await expect(page.getByTestId("job-file-info")).toContainText("hook.gcode: 3.71 g");
  // With a stored file, no printer chosen means any printer that fits.
  await expect(form.getByLabel("Printer").locator("option:checked")).toHaveText("Any printer that fits");
  await expect(page.getByTestId("job-any-printer-hint")).toBeVisible();
  await form.getByLabel("Spool").selectOption({ label: "Any spool of…" });
  await form.getByLabel("Material").selectOption("PLA");
  await form.getByLabel("Colour").fill("red");
  await form.getByLabel("Copies").fill("2");
  await form.getByRole("button", { name: "Queue 2 copies" }).click();

  // Assert: two cards saying what they wait for; the queue holds them, for any printer
  // and any spool of PLA red, of the stored file.
  const queued = dashboard.column("queued").getByRole("listitem");
  await expect(queued).toHaveCount(2);
  for (const card of await queued.all()) {
    await expect(card.getByTestId("job-printer")).toHaveText("any printer");
    await expect(card.getByTestId("job-spool")).toHaveText("any PLA red");
    await expect(card).toContainText("hook.gcode");
    // No printer to start on by hand yet: Cancel, and its place in the queue.
    await expect(card.getByRole("button")).toHaveText(["Cancel", "Download", "Move up", "Move down", "To top"]);
  }
  const jobs = await cluster.getJson<Job[]>(leader, "/api/v1/queue");
  expect(jobs).toHaveLength(2);
  for (const job of jobs) {
    expect(job).toMatchObject({
      printer_id: null,
      filament_id: null,
      material: { type: "PLA", color: "red" },
      filepath: "hook.gcode",
      print_weight_in_grams: 4,
      status: "Queued",
    });
    expect(job.file_id).toBe(jobs[0].file_id);
  }
  const [first, second] = jobs.map((job) => job.id);
  // The form is ready for the next job, back to one copy.
  await expect(form.getByLabel("Copies")).toHaveValue("1");
  await expect(form.getByRole("button", { name: "Queue job" })).toBeVisible();

  // The column is in queue order; a move goes only where there is somewhere to go.
  const cardAt = (n: number) => queued.nth(n);
  const card = (id: string) => dashboard.column("queued").getByTestId(`job-${id}`);
  const order = async (ids: string[]) => {
    for (const [n, id] of ids.entries()) await expect(cardAt(n)).toHaveAttribute("data-testid", `job-${id}`);
    expect(await queueIds(cluster, leader)).toEqual(ids);
  };
  await order([first, second]);
  await expect(card(first).getByRole("button", { name: "Move up" })).toBeDisabled();
  await expect(card(first).getByRole("button", { name: "To top" })).toBeDisabled();
  await expect(card(second).getByRole("button", { name: "Move down" })).toBeDisabled();

  // Move down, Move up, To top: on screen and in the queue.
  await card(first).getByRole("button", { name: "Move down" }).click();
  await order([second, first]);
  await expect(card(second).getByRole("button", { name: "Move up" })).toBeDisabled();
  await card(first).getByRole("button", { name: "Move up" }).click();
  await order([first, second]);
  await card(second).getByRole("button", { name: "To top" }).click();
  await order([second, first]);
  await dashboard.screenshot("job-board-queue");

  // A move is made in the whole queue, not among the jobs a filter shows: a job of p-a,
  // alone on the board filtered to p-a, moves up past the copies it does not show.
  const third = (
    await onLeader<Job>(cluster, "POST", "/api/v1/print_jobs", {
      printer_id: "p-a",
      filament_id: "pla-white",
      filepath: "clip.gcode",
      print_weight_in_grams: 5,
    })
  ).id;
  await expect(card(third)).toBeVisible();
  expect(await queueIds(cluster, leader)).toEqual([second, first, third]);
  await page.getByTestId("filter-printer").selectOption("p-a");
  await expect(queued).toHaveCount(1);
  await card(third).getByRole("button", { name: "Move up" }).click();
  await expect.poll(() => queueIds(cluster, leader)).toEqual([second, third, first]);
  await card(third).getByRole("button", { name: "To top" }).click();
  await expect.poll(() => queueIds(cluster, leader)).toEqual([third, second, first]);
  await page.getByTestId("filter-printer").selectOption("");
  await order([third, second, first]);

  // A spool on p-a, loaded in its row.
  await dashboard.go("Printers");
  const spoolOf = (id: string) => printerRow(page, id).getByTestId("loaded-spool");
  await expect(spoolOf("p-a").locator("option:checked")).toHaveText("No spool loaded");
  await spoolOf("p-a").selectOption("pla-red");
  // Once it landed, p-b's choices say p-a has it.
  await expect(spoolOf("p-b").locator("option", { hasText: "pla-red" })).toHaveText(/· on p-a$/);
  await expect(spoolOf("p-a")).toHaveValue("pla-red");
  expect((await cluster.getJson<Printer>(leader, "/api/v1/printers/p-a")).loaded_filament_id).toBe("pla-red");

  // The same spool on p-b is refused while p-a has it: said under p-b's select, which
  // goes back to what p-b has.
  await spoolOf("p-b").selectOption("pla-red");
  await expect(printerRow(page, "p-b")).toContainText("loaded on printer 'p-a': unload it there first");
  await expect(spoolOf("p-b")).toHaveValue("");
  expect((await cluster.getJson<Printer>(leader, "/api/v1/printers/p-b")).loaded_filament_id).toBeUndefined();

  // Unloaded from p-a, it goes on p-b.
  await spoolOf("p-a").selectOption("");
  await expect(spoolOf("p-b").locator("option", { hasText: "pla-red" })).not.toHaveText(/on p-a/);
  await spoolOf("p-b").selectOption("pla-red");
  await expect(spoolOf("p-b")).toHaveValue("pla-red");
  expect((await cluster.getJson<Printer>(leader, "/api/v1/printers/p-a")).loaded_filament_id).toBeUndefined();
  expect((await cluster.getJson<Printer>(leader, "/api/v1/printers/p-b")).loaded_filament_id).toBe("pla-red");

  // Connected as clearing its own bed (to a host that does not answer: nothing prints).
  const row = printerRow(page, "p-a");
  await row.getByRole("button", { name: "Connect…" }).click();
  const connect = row.getByRole("form", { name: "Connect printer p-a" });
  await connect.getByLabel("URL").fill("http://127.0.0.1:9");
  await connect.getByLabel("Clears its own bed").check();
  await connect.getByRole("button", { name: "Connect" }).click();
  await expect(row.getByTestId("self-clearing-state")).toHaveText("clears its own bed");
  expect((await cluster.getJson<Printer>(leader, "/api/v1/printers/p-a")).connection?.self_clearing).toBe(true);
  await dashboard.screenshot("printers-spools");
});

// Skipped before its cluster starts when OctoPrint is not installed.
test.describe(() => {
  test.skip(!octoprintInstalled(), "OctoPrint is not installed (scripts/octoprint.sh install)");

  test("a printer on a real OctoPrint waits for its bed to be cleared between jobs", async ({ cluster, dashboard, page }) => {
    test.setTimeout(240_000);
    const host = await OctoPrint.start();
    try {
      // Arrange: a printer connected to OctoPrint, without a spool; a spool; two copies of
      // a short print for any spool of its material and colour, queued before.
      await printers(cluster, ["p-octo"]);
      await spool(cluster, "pla-1", "Galaxy Black");
      const fileId = await uploadFile(cluster, "cube.gcode", gcode(3_000));
      const [job1, job2] = await onLeader<Job[]>(cluster, "POST", "/api/v1/queue", {
        file_id: fileId,
        material: { type: "PLA", color: "galaxy black" },
        copies: 2,
      });
      await onLeader(cluster, "PUT", "/api/v1/printers/p-octo/connection", {
        kind: "octoprint",
        url: host.url,
        api_key: OCTOPRINT_KEY,
      });
      const leader = await cluster.waitForLeader();
      await dashboard.open(cluster.url(leader), "/printers");
      const row = printerRow(page, "p-octo");
      await expect(row.getByTestId("printer-state")).toHaveText("Idle", { timeout: 30_000 });
      await expect(row.getByTestId("self-clearing-state")).toHaveText("waits for its bed to be cleared after each job");

      // Act: load the spool in the page. The printer fits the first copy now.
      await row.getByTestId("loaded-spool").selectOption("pla-1");

      // Assert: the first copy prints and ends; then the printer says it waits for its bed
      // to be cleared, and the second copy waits in the queue, not sent.
      const notice = row.getByTestId("bed-wait");
      await expect(notice).toContainText("Waiting for the bed to be cleared (after job cube.gcode)", { timeout: 90_000 });
      const ended = await cluster.getJson<Job>(leader, `/api/v1/print_jobs/${job1.id}`);
      expect(ended).toMatchObject({ status: "Done", printer_id: "p-octo", filament_id: "pla-1" });
      const waiting = await cluster.getJson<Job>(leader, `/api/v1/print_jobs/${job2.id}`);
      expect(waiting.status).toBe("Queued");
      expect(waiting.dispatch).toBeUndefined();
      // Read after the second copy: the bed still waited, so nothing could have been sent.
      const full = await cluster.getJson<Printer>(leader, "/api/v1/printers/p-octo");
      expect(full.awaiting_clear?.job_id).toBe(job1.id);
      await dashboard.screenshot("printers-bed-wait");

      // Act: someone took the print off.
      await notice.getByRole("button", { name: "Bed is clear" }).click();

      // Assert: the notice goes, and the second copy is sent, prints and ends; then the
      // printer waits again, after that one.
      await expect(notice).toHaveCount(0);
      await expect
        .poll(async () => (await cluster.getJson<Job>(leader, `/api/v1/print_jobs/${job2.id}`)).dispatch !== undefined, {
          timeout: 30_000,
        })
        .toBe(true);
      await expect
        .poll(async () => (await cluster.getJson<Printer>(leader, "/api/v1/printers/p-octo")).awaiting_clear?.job_id, {
          timeout: 90_000,
        })
        .toBe(job2.id);
      expect((await cluster.getJson<Job>(leader, `/api/v1/print_jobs/${job2.id}`)).status).toBe("Done");
      await expect(notice).toBeVisible();
    } finally {
      await host.stop();
    }
  });
});
