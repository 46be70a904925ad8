//! Overview: the farm at a glance — printers busy and idle, what each connected printer
//! is doing (offline and error first), jobs per status, spools low on available
//! filament, and the cluster's health.

use super::printer_state::PrinterCondition;
use crate::components::StatusBadge;
use crate::model::printing::{connected_first_in_trouble, needs_attention};
use crate::model::{grams, jobs_per_status, low_spools, printer_usage};
use crate::FarmStore;
use leptos::prelude::*;

#[component]
pub fn OverviewPage() -> AnyView {
    let store = expect_context::<FarmStore>();
    let usage = Memo::new(move |_| store.data.with(printer_usage));
    let connected = Memo::new(move |_| {
        store.data.with(|d| {
            connected_first_in_trouble(&d.printers)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let attention = Memo::new(move |_| {
        store
            .data
            .with(|d| d.printers.iter().filter(|p| needs_attention(p)).count())
    });
    let per_status = Memo::new(move |_| store.data.with(jobs_per_status));
    let low = Memo::new(move |_| {
        store.data.with(|d| {
            low_spools(&d.filaments)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let leader = move || {
        store.data.with(|d| {
            d.cluster
                .as_ref()
                .and_then(|c| c.leader_id)
                .map_or_else(|| "none (election)".to_owned(), |id| format!("node {id}"))
        })
    };
    let nodes_up = move || {
        let (up, all) = store.member_views.with(|views| {
            (
                views.iter().filter(|(_, v)| v.is_some()).count(),
                views.len(),
            )
        });
        format!("{up} of {all}")
    };
    let term = move || {
        store
            .data
            .with(|d| d.cluster.as_ref().map(|c| c.term).unwrap_or(0))
    };

    view! {
        <h1>"Overview"</h1>
        <div class="cards">
            <section class="card" aria-labelledby="ov-printers">
                <h2 id="ov-printers">"Printers"</h2>
                <dl class="stats">
                    <div>
                        <dt>"Busy"</dt>
                        <dd data-testid="printers-busy">{move || usage.get().0}</dd>
                    </div>
                    <div>
                        <dt>"Idle"</dt>
                        <dd data-testid="printers-idle">{move || usage.get().1}</dd>
                    </div>
                    <div>
                        <dt>"Offline or error"</dt>
                        <dd data-testid="printers-attention" class:attention=move || { attention.get() > 0 }>
                            {move || attention.get()}
                        </dd>
                    </div>
                </dl>
                <Show when=move || !connected.with(Vec::is_empty)>
                    <ul class="printer-conditions" data-testid="overview-printers">
                        <For each=move || connected.get() key=|p| p.id.clone() let:printer>
                            <li data-testid=format!("overview-printer-{}", printer.id)>
                                <span class="printer-name">
                                    {format!("{} {}", printer.company.as_str(), printer.model.as_str())}
                                </span>
                                <PrinterCondition id=printer.id.clone()/>
                            </li>
                        </For>
                    </ul>
                </Show>
            </section>
            <section class="card" aria-labelledby="ov-jobs">
                <h2 id="ov-jobs">"Jobs"</h2>
                <dl class="stats">
                    {move || {
                        per_status
                            .get()
                            .into_iter()
                            .map(|(status, count)| {
                                view! {
                                    <div>
                                        <dt><StatusBadge status/></dt>
                                        <dd data-testid=format!("jobs-{}", status.as_str().to_lowercase())>
                                            {count}
                                        </dd>
                                    </div>
                                }
                            })
                            .collect_view()
                    }}
                </dl>
            </section>
            <section class="card" aria-labelledby="ov-low">
                <h2 id="ov-low">"Spools low on filament"</h2>
                <Show
                    when=move || !low.with(Vec::is_empty)
                    fallback=|| view! { <p class="empty">"No spool is low."</p> }
                >
                    <ul class="low-spools" data-testid="low-spools">
                        <For
                            each=move || low.get()
                            key=|s| (s.filament.id.clone(), s.available_weight_in_grams)
                            let:spool
                        >
                            <li>
                                <span class="mono">{spool.filament.id.to_string()}</span>
                                " "
                                {spool.filament.kind.as_str()}
                                " "
                                {spool.filament.color.as_str().to_owned()}
                                <span class="num">
                                    {format!("{} available", grams(spool.available_weight_in_grams))}
                                </span>
                            </li>
                        </For>
                    </ul>
                </Show>
            </section>
            <section class="card" aria-labelledby="ov-cluster">
                <h2 id="ov-cluster">"Cluster"</h2>
                <dl class="stats">
                    <div>
                        <dt>"Leader"</dt>
                        <dd data-testid="overview-leader">{leader}</dd>
                    </div>
                    <div>
                        <dt>"Nodes answering"</dt>
                        <dd data-testid="overview-nodes-up">{nodes_up}</dd>
                    </div>
                    <div>
                        <dt>"Term"</dt>
                        <dd>{term}</dd>
                    </div>
                </dl>
            </section>
        </div>
    }
    // Erased: the page's view type would otherwise be too deep for the node's
    // compiler to prove it `Send`.
    .into_any()
}
