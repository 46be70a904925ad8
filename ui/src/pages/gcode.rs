//! The queue form's G-code: a file stored in the cluster, chosen from a list
//! (`GET /api/v1/files`), or uploaded from here (picked, or dropped onto the form), after
//! which the form shows what its slicer says (grams, time) and pre-fills the weight. A job
//! of a stored file is created with its `file_id`; without one the form names a file
//! path as before (a job moved by hand). Under the form, the stored files themselves:
//! each to download or delete ([`StoredFiles`]).

use crate::components::{submit, Field, FormErrors};
use crate::model::printing::{file_choice, file_figures, file_size};
use crate::store::Write;
use crate::FarmStore;
use app::domain::GcodeFile;
use leptos::prelude::*;

/// Where an upload is.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum UploadState {
    #[default]
    None,
    /// Sending this file's bytes.
    Sending(String),
    /// Why the last upload failed.
    Failed(String),
}

/// What the form knows about stored G-code: the choices, the one chosen, the upload.
/// Cheap to copy (signals only), so the form's drop handler and the chooser share it.
#[derive(Debug, Clone, Copy)]
pub struct GcodeSource {
    /// The newest stored files, newest first.
    pub files: RwSignal<Vec<GcodeFile>>,
    /// The chosen file's id; empty: the job names a file path instead.
    pub chosen: RwSignal<String>,
    pub upload: RwSignal<UploadState>,
    /// A file is being dragged over the form.
    pub dragging: RwSignal<bool>,
}

impl GcodeSource {
    pub fn new() -> Self {
        Self {
            files: RwSignal::new(Vec::new()),
            chosen: RwSignal::new(String::new()),
            upload: RwSignal::new(UploadState::None),
            dragging: RwSignal::new(false),
        }
    }

    /// The chosen stored file (tracked).
    pub fn chosen_file(&self) -> Option<GcodeFile> {
        let chosen = self.chosen.get();
        self.files
            .with(|files| files.iter().find(|f| f.id.as_str() == chosen).cloned())
    }

    /// Chooses `id` (empty: none) and puts its slicer's weight, rounded up, into `weight`.
    pub fn choose(&self, id: String, weight: RwSignal<String>) {
        let grams = self.files.with_untracked(|files| {
            files
                .iter()
                .find(|f| f.id.as_str() == id)
                .and_then(GcodeFile::job_weight)
        });
        if let Some(grams) = grams {
            weight.set(grams.to_string());
        }
        self.chosen.set(id);
    }

    /// Takes the list the node answered; keeps the chosen file in it should the node
    /// not list it yet (a follower a moment behind the upload).
    pub fn replace_files(&self, mut fresh: Vec<GcodeFile>) {
        let chosen = self.chosen.get_untracked();
        let keep = self.files.with_untracked(|files| {
            files
                .iter()
                .find(|f| f.id.as_str() == chosen)
                .filter(|f| !fresh.iter().any(|n| n.id == f.id))
                .cloned()
        });
        fresh.splice(0..0, keep);
        if self.files.with_untracked(|files| files != &fresh) {
            self.files.set(fresh);
        }
    }

    pub fn clear(&self) {
        self.chosen.set(String::new());
        self.upload.set(UploadState::None);
    }

    /// Sends `file` to the cluster; once stored, it is the chosen file and its grams
    /// fill `weight`.
    #[cfg(feature = "hydrate")]
    pub fn upload(self, store: FarmStore, file: web_sys::File, weight: RwSignal<String>) {
        self.upload.set(UploadState::Sending(file.name()));
        leptos::task::spawn_local(async move {
            match store.upload(file).await {
                Ok(stored) => {
                    let id = stored.id.to_string();
                    self.files.update(|files| {
                        files.retain(|f| f.id != stored.id);
                        files.insert(0, stored);
                    });
                    self.choose(id, weight);
                    self.upload.set(UploadState::None);
                }
                Err(failure) => self.upload.set(UploadState::Failed(failure.to_string())),
            }
        });
    }
}

impl Default for GcodeSource {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps `source.files` current while the form is on the page: read when it appears and
/// again whenever the board moves (a `file.added` or `file.deleted` event moves it too).
pub fn follow_files(store: FarmStore, source: GcodeSource) {
    Effect::new(move |_| {
        let _index = store.data.with(|d| d.index);
        if store.show_login() {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(files) = store.files().await {
                source.replace_files(files);
            }
        });
    });
}

/// The chooser: stored files, an upload control, and what the chosen file's slicer says.
#[component]
pub fn GcodeChooser(
    source: GcodeSource,
    weight: RwSignal<String>,
    errors: RwSignal<FormErrors>,
    form: &'static str,
) -> AnyView {
    #[cfg(feature = "hydrate")]
    let store = expect_context::<FarmStore>();
    let on_pick = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(file) = crate::client::picked_file(&ev) {
                source.upload(store, file, weight);
            }
            crate::client::clear_picked(&ev);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let choices = move || {
        source.files.with(|files| {
            files
                .iter()
                .map(|f| {
                    let id = f.id.to_string();
                    // Selected by the option itself too: the list may arrive after the
                    // choice (an upload), and the select's value alone would miss it.
                    let selected = {
                        let id = id.clone();
                        move || source.chosen.with(|c| c == &id)
                    };
                    view! { <option value=id prop:selected=selected>{file_choice(f)}</option> }
                })
                .collect_view()
        })
    };
    let upload_status = move || match source.upload.get() {
        UploadState::None => None,
        UploadState::Sending(name) => Some(format!("Uploading {name}…")),
        UploadState::Failed(why) => Some(format!("Upload failed: {why}")),
    };
    let failed = move || source.upload.with(|u| matches!(u, UploadState::Failed(_)));
    let figures = move || {
        source.chosen_file().map(|f| {
            let said =
                file_figures(&f).unwrap_or_else(|| "its slicer says no grams or time".to_owned());
            let slicer = f
                .slicer
                .as_ref()
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default();
            format!("{}: {said}{slicer}", f.name.as_str())
        })
    };
    view! {
        <Field label="Stored G-code" name="file_id" form errors>
            <select
                id=format!("{form}-file_id")
                prop:value=move || source.chosen.get()
                on:change=move |ev| source.choose(event_target_value(&ev), weight)
            >
                <option value="">"None: name a file path below"</option>
                {choices}
            </select>
        </Field>
        <div class="field upload">
            <label for=format!("{form}-upload")>"Upload G-code"</label>
            <input
                id=format!("{form}-upload")
                type="file"
                accept=".gcode,.gco,.g,text/x-gcode"
                aria-describedby=format!("{form}-upload-status")
                disabled=move || source.upload.with(|u| matches!(u, UploadState::Sending(_)))
                on:change=on_pick
            />
            <p class="hint">"…or drop a G-code file onto this form."</p>
            <p
                class="upload-status"
                class:form-error=failed
                id=format!("{form}-upload-status")
                data-testid=format!("{form}-upload-status")
                aria-live="polite"
            >
                {upload_status}
            </p>
        </div>
        <p class="file-figures" data-testid=format!("{form}-file-info") aria-live="polite">
            {figures}
        </p>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

/// Saves a stored file (fetched with the token: a plain link cannot carry it).
#[component]
pub fn Download(file_id: String, name: String, errors: RwSignal<FormErrors>) -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let busy = RwSignal::new(false);
    let label = format!("Download G-code: {name}");
    let on_click = move |_| {
        let (file_id, name) = (file_id.clone(), name.clone());
        leptos::task::spawn_local(async move {
            busy.set(true);
            let result = store.download(file_id, name).await;
            busy.set(false);
            errors.set(match result {
                Ok(()) => FormErrors::default(),
                Err(failure) => FormErrors::from_failure(&failure),
            });
        });
    };
    view! {
        <button type="button" class="quiet download" disabled=move || busy.get() aria-label=label on:click=on_click>
            "Download"
        </button>
    }
}

/// The stored files, newest first, with what their slicer says and their size, each to
/// download or delete. The cluster refuses a delete while a queued or running job prints
/// the file; the refusal is shown under it.
#[component]
pub fn StoredFiles(source: GcodeSource) -> AnyView {
    view! {
        <section class="panel stored-files" aria-labelledby="stored-files-title" data-testid="stored-files">
            <h2 id="stored-files-title">"Stored G-code"</h2>
            <Show
                when=move || !source.files.with(Vec::is_empty)
                fallback=|| view! { <p class="empty">"No stored files yet: upload one in the form."</p> }
            >
                <ul class="stored-file-list">
                    <For each=move || source.files.get() key=|f| f.id.clone() let:file>
                        <StoredFile file source/>
                    </For>
                </ul>
            </Show>
        </section>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}

#[component]
fn StoredFile(file: GcodeFile, source: GcodeSource) -> AnyView {
    let store = expect_context::<FarmStore>();
    let errors = RwSignal::new(FormErrors::default());
    let busy = RwSignal::new(false);
    let id = file.id.to_string();
    let name = file.name.as_str().to_owned();
    let on_delete = {
        let id = id.clone();
        move |_| {
            let id = id.clone();
            let write = Write::DeleteFile {
                file_id: id.clone(),
            };
            leptos::task::spawn_local(async move {
                if submit(store, write, busy, errors).await {
                    source
                        .files
                        .update(|files| files.retain(|f| f.id.as_str() != id));
                    if source.chosen.with_untracked(|chosen| chosen == &id) {
                        source.chosen.set(String::new());
                    }
                }
            });
        }
    };
    view! {
        <li data-testid=format!("stored-file-{id}")>
            <p class="stored-file-line">
                <span class="stored-file-name">{file_choice(&file)}</span>
                " "
                <span class="num">{file_size(file.size)}</span>
            </p>
            <div class="job-actions">
                <Download file_id=id.clone() name=name.clone() errors/>
                <button
                    type="button"
                    class="quiet danger"
                    aria-label=format!("Delete G-code: {name}")
                    disabled=move || busy.get()
                    on:click=on_delete
                >
                    "Delete"
                </button>
            </div>
            <p class="form-error" aria-live="polite">{move || errors.with(|e| e.message.clone())}</p>
        </li>
    }
    .into_any()
}
