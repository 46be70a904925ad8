// Printers driven through their hosts, in the browser, on a real 3-node cluster:
// - a G-code file uploaded through the queue form (picked, and dropped onto the form)
//   shows its slicer's grams and time and fills the weight; a job of it shows the file on
//   its card and downloads it with the token; the stored files under the form delete,
//   except one a queued job prints (the refusal shown);
// - a printer connected to a host that does not answer says "Offline" on its card and on
//   the overview; the connect form refuses a bad URL before sending, connects, and
//   Disconnect makes the printer move by hand again;
// - with a real OctoPrint (its virtual printer; skipped unless `scripts/octoprint.sh
//   install` has run): connected through the form, the printer takes a stored file's job
//   by itself, its card says "Printing" with the job and temperatures, the job card says
//   "sent to printer" and offers no Start or Done, and the job ends Done.
import { readFileSync } from "node:fs";
import { test, expect, Page } from "./fixtures/test";
import { Cluster } from "./fixtures/cluster";
import { gcode, Job, octoprintInstalled, OctoPrint, OCTOPRINT_KEY, onLeader, uploadFile } from "./fixtures/printing";

async function farm(cluster: Cluster, printers: string[]): Promise<void> {
  for (const id of printers) {
    await onLeader(cluster, "POST", "/api/v1/printers", { id, company: "Prusa", model: `MK4 ${id}` });
  }
  await onLeader(cluster, "POST", "/api/v1/filaments", {
    id: "pla-1",
    type: "PLA",
    color: "Galaxy Black",
    total_weight_in_grams: 1000,
  });
}

function printerRow(page: Page, id: string) {
  return page.getByTestId(`printer-${id}`);
}

test("upload G-code in the queue form, queue a job of it, download it", async ({ cluster, dashboard, page }) => {
  // Arrange: a printer and a spool; the page of a follower, so the upload goes to the
  // leader on another origin.
  await farm(cluster, ["p-mk4"]);
  const leader = await cluster.waitForLeader();
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await dashboard.open(cluster.url(follower), "/jobs");
  const form = dashboard.jobForm();

  // Act: pick a file in the form.
  const content = gcode();
  await form.getByLabel("Upload G-code").setInputFiles({
    name: "benchy.gcode",
    mimeType: "text/x-gcode",
    buffer: Buffer.from(content),
  });

  // Assert: what the slicer says, the weight filled in (3.71 g rounded up), the file
  // chosen, and no file path to type.
  const info = page.getByTestId("job-file-info");
  await expect(info).toContainText("benchy.gcode: 3.71 g · 1 min 5 s");
  await expect(info).toContainText("PrusaSlicer 2.7.1");
  await expect(form.getByLabel("Weight (g)")).toHaveValue("4");
  await expect(form.getByLabel("Stored G-code").locator("option:checked")).toHaveText("benchy.gcode · 3.71 g · 1 min 5 s");
  await expect(form.getByLabel("File", { exact: true })).toHaveCount(0);

  // Queue it: the card names the file; the job prints the stored file with its weight.
  await form.getByLabel("Printer").selectOption("p-mk4");
  await form.getByLabel("Spool").selectOption("pla-1");
  await form.getByRole("button", { name: "Queue job" }).click();
  const card = dashboard.jobCard("queued", "benchy.gcode");
  await expect(card).toBeVisible();
  await expect(card).toContainText("4 g");
  // It waits in the queue, alone: it can be moved nowhere.
  await expect(card.getByRole("button")).toHaveText(["Start", "Cancel", "Download", "Move up", "Move down", "To top"]);
  for (const name of ["Move up", "Move down", "To top"]) {
    await expect(card.getByRole("button", { name })).toBeDisabled();
  }
  const jobs = await cluster.getJson<Job[]>(leader, "/api/v1/print_jobs");
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({ filepath: "benchy.gcode", print_weight_in_grams: 4, status: "Queued" });
  expect(jobs[0].file_id).toBeTruthy();
  // The form is ready for the next job: no file chosen, the path field back, the same
  // printer and spool (whose option now shows fewer grams available).
  await expect(info).toBeEmpty();
  await expect(form.getByLabel("File", { exact: true })).toHaveValue("");
  await expect(form.getByLabel("Spool").locator("option:checked")).toContainText("996 g available");
  await expect(form.getByLabel("Printer")).toHaveValue("p-mk4");

  // Download: the bytes come with the token, saved under the file's name.
  const downloading = page.waitForEvent("download");
  await card.getByRole("button", { name: "Download G-code: benchy.gcode" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe("benchy.gcode");
  expect(readFileSync(await download.path(), "utf8")).toBe(content);

  // A file dropped onto the form is uploaded too, and joins the stored files.
  const dropped = await page.evaluateHandle((text) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([text], "gearbox.gcode", { type: "text/x-gcode" }));
    return transfer;
  }, content.replace("3.71", "12.5"));
  await form.dispatchEvent("dragover", { dataTransfer: dropped });
  await form.dispatchEvent("drop", { dataTransfer: dropped });
  await expect(info).toContainText("gearbox.gcode: 12.5 g · 1 min 5 s");
  await expect(form.getByLabel("Weight (g)")).toHaveValue("13");
  await expect(form.getByLabel("Stored G-code").locator("option")).toHaveText([
    "None: name a file path below",
    "gearbox.gcode · 12.5 g · 1 min 5 s",
    "benchy.gcode · 3.71 g · 1 min 5 s",
  ]);
  const files = await cluster.getJson<{ id: string; name: string }[]>(follower, "/api/v1/files");
  expect(files.map((f) => f.name).sort()).toEqual(["benchy.gcode", "gearbox.gcode"]);
  await dashboard.screenshot("job-board-gcode");

  // The stored files under the form: the one a queued job prints cannot be deleted (the
  // cluster says why, the file stays); the other one can.
  const stored = page.getByTestId("stored-files");
  await expect(stored.getByRole("listitem")).toHaveCount(2);
  await expect(stored).toContainText("gearbox.gcode · 12.5 g · 1 min 5 s");
  const benchy = files.find((f) => f.name === "benchy.gcode")!;
  const gearbox = files.find((f) => f.name === "gearbox.gcode")!;
  await stored.getByRole("button", { name: "Delete G-code: benchy.gcode" }).click();
  await expect(page.getByTestId(`stored-file-${benchy.id}`)).toContainText(`is used by print job '${jobs[0].id}'`);
  await stored.getByRole("button", { name: "Delete G-code: gearbox.gcode" }).click();
  await expect(page.getByTestId(`stored-file-${gearbox.id}`)).toHaveCount(0);
  await expect(stored.getByRole("listitem")).toHaveCount(1);
  await expect(form.getByLabel("Stored G-code").locator("option")).toHaveText([
    "None: name a file path below",
    "benchy.gcode · 3.71 g · 1 min 5 s",
  ]);
  const left = await cluster.getJson<{ name: string }[]>(leader, "/api/v1/files");
  expect(left.map((f) => f.name)).toEqual(["benchy.gcode"]);
});

test("a printer whose host does not answer is Offline; connect and disconnect in the page", async ({ cluster, dashboard, page }) => {
  // Arrange: two printers; the page of the leader (connections are written there).
  await farm(cluster, ["p-off", "p-form"]);
  const leader = await cluster.waitForLeader();
  await dashboard.open(cluster.url(leader), "/printers");
  await expect(printerRow(page, "p-form").getByTestId("printer-state")).toHaveText("Not connected (jobs move by hand)");

  // Act: connect p-off, through the API, to a port nothing listens on.
  const connectedAt = Date.now();
  await onLeader(cluster, "PUT", "/api/v1/printers/p-off/connection", {
    kind: "octoprint",
    url: "http://127.0.0.1:9",
    api_key: "0123456789ABCDEF0123456789ABCDEF",
  });

  // Assert: its card says Offline within 10 s, and that a key is stored (not the key).
  const off = printerRow(page, "p-off");
  await expect(off.getByTestId("printer-state")).toHaveText("Offline", { timeout: 10_000 });
  console.log(`p-off showed Offline ${Date.now() - connectedAt} ms after it was connected`);
  await expect(off.getByTestId("printer-state")).toHaveClass(/printer-offline/);
  await expect(off.getByTestId("printer-connection")).toContainText("http://127.0.0.1:9");
  await expect(off.getByTestId("api-key-state")).toHaveText("API key set");
  await expect(off).not.toContainText("0123456789ABCDEF");
  await dashboard.screenshot("printers-offline");

  // The overview counts it and lists it first.
  await dashboard.go("Overview");
  await expect(page.getByTestId("printers-attention")).toHaveText("1");
  await expect(page.getByTestId("overview-printer-p-off").getByTestId("printer-state")).toHaveText("Offline");
  await dashboard.go("Printers");

  // The connect form: a bad URL is refused next to the field before anything is sent.
  const row = printerRow(page, "p-form");
  await row.getByRole("button", { name: "Connect…" }).click();
  const connect = row.getByRole("form", { name: "Connect printer p-form" });
  await connect.getByLabel("URL").fill("octopi.local");
  await connect.getByRole("button", { name: "Connect" }).click();
  await expect(page.getByTestId("connect-p-form-url-error")).toContainText("http(s)://host");
  await expect(row.getByTestId("printer-state")).toHaveText("Not connected (jobs move by hand)");

  // A good one, without a key and without auto-dispatch: connected, and soon Offline.
  await connect.getByLabel("URL").fill("http://127.0.0.1:9");
  await connect.getByLabel("Send it queued jobs").uncheck();
  await connect.getByRole("button", { name: "Connect" }).click();
  await expect(connect).toHaveCount(0);
  await expect(row.getByTestId("api-key-state")).toHaveText("no API key");
  await expect(row.getByTestId("printer-connection")).toContainText("jobs are sent to it by hand");
  await expect(row.getByTestId("printer-state")).toHaveText("Offline", { timeout: 10_000 });
  const printer = await cluster.getJson<{ connection: object }>(leader, "/api/v1/printers/p-form");
  expect(printer.connection).toEqual({
    kind: "octoprint",
    url: "http://127.0.0.1:9",
    api_key_set: false,
    auto_dispatch: false,
    self_clearing: false,
  });
  await expect(row.getByTestId("self-clearing-state")).toHaveText("waits for its bed to be cleared after each job");

  // Disconnect: its jobs move by hand again.
  await row.getByRole("button", { name: "Disconnect p-form" }).click();
  await expect(row.getByTestId("printer-state")).toHaveText("Not connected (jobs move by hand)");
  await expect(row.getByTestId("api-key-state")).toHaveCount(0);
});

// ---- a real OctoPrint

// Skipped before its cluster starts when OctoPrint is not installed.
test.describe(() => {
  test.skip(!octoprintInstalled(), "OctoPrint is not installed (scripts/octoprint.sh install)");

  test("a printer on a real OctoPrint prints a stored file's job by itself", async ({ cluster, dashboard, page }) => {
    const host = await OctoPrint.start();
    try {
      // Arrange: a printer, a spool, a stored file that prints for about 25 s, and a job of
      // it, queued before the printer is connected.
      await farm(cluster, ["p-octo"]);
      const leader = await cluster.waitForLeader();
      const fileId = await uploadFile(cluster, "cube.gcode", gcode(25_000));
      const job = await onLeader<Job>(cluster, "POST", "/api/v1/print_jobs", {
        printer_id: "p-octo",
        filament_id: "pla-1",
        file_id: fileId,
      });
      await dashboard.open(cluster.url(leader), "/printers");

      // Act: connect it in the page, with its API key.
      const row = printerRow(page, "p-octo");
      await row.getByRole("button", { name: "Connect…" }).click();
      const connect = row.getByRole("form", { name: "Connect printer p-octo" });
      await connect.getByLabel("URL").fill(host.url);
      await connect.getByLabel("API key").fill(OCTOPRINT_KEY);
      await connect.getByRole("button", { name: "Connect" }).click();
      await expect(row.getByTestId("api-key-state")).toHaveText("API key set");

      // Assert: it takes the job by itself; the card says so with the job, linked, and
      // the heaters' live temperatures (the file heats the nozzle to 200 °C).
      await expect(row.getByTestId("printer-state")).toHaveText("Printing", { timeout: 30_000 });
      await expect(row.getByTestId("printer-job")).toHaveText("cube.gcode");
      await expect(row.getByTestId("printer-temperatures")).toContainText(/Nozzle \d+ \/ 200 °C/, { timeout: 10_000 });
      await expect(row.getByTestId("printer-progress")).toContainText(/\d+\s%/, { timeout: 10_000 });
      await dashboard.screenshot("printers-printing");

      // The job card: sent to the printer, so only Cancel (and the download) by hand.
      await row.getByTestId("printer-job").click();
      await expect(page.getByRole("heading", { level: 1, name: "Job board" })).toBeVisible();
      await expect(page.getByTestId("filter-text")).toHaveValue(job.id);
      const card = dashboard.column("running").getByTestId(`job-${job.id}`);
      await expect(card.getByTestId("job-dispatch")).toContainText("sent to printer");
      await expect(card.getByRole("button")).toHaveText(["Cancel", "Download"]);

      // It ends Done on the printer's word.
      await expect(dashboard.column("done").getByTestId(`job-${job.id}`)).toBeVisible({ timeout: 60_000 });
      await dashboard.go("Printers");
      await expect(row.getByTestId("printer-state")).toHaveText("Idle", { timeout: 15_000 });
    } finally {
      await host.stop();
    }
  });
});
