//! Cluster: every member with its addresses, role, term and indexes as it reports them
//! to this browser, whether it answers, the leader marked, and which node this page
//! talks to.

use crate::FarmStore;
use app::api::{ClusterView, MemberView, Role};
use leptos::prelude::*;

/// One row: the member as the answering node lists it, plus its own report.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    member: MemberView,
    own_view: Option<ClusterView>,
    /// Whether this browser has probed the member at least once.
    probed: bool,
    /// What the leader reports about reaching this member (only the leader knows).
    leader_reaches: Option<bool>,
    is_leader: bool,
    is_ours: bool,
}

fn index(value: Option<u64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

#[component]
pub fn ClusterPage() -> impl IntoView {
    let store = expect_context::<FarmStore>();
    let rows = Memo::new(move |_| {
        let views = store.member_views.get();
        store.data.with(|d| {
            let Some(cluster) = &d.cluster else {
                return Vec::new();
            };
            let leader_view = views
                .iter()
                .filter_map(|(_, v)| v.as_ref())
                .find(|v| v.role == Role::Leader);
            cluster
                .members
                .iter()
                .map(|member| {
                    let probe = views.iter().find(|(id, _)| *id == member.id);
                    let leader_reaches = leader_view
                        .and_then(|v| v.members.iter().find(|m| m.id == member.id))
                        .and_then(|m| m.reachable);
                    Row {
                        member: member.clone(),
                        own_view: probe.and_then(|(_, v)| v.clone()),
                        probed: probe.is_some(),
                        leader_reaches,
                        is_leader: cluster.leader_id == Some(member.id),
                        is_ours: cluster.node_id == member.id,
                    }
                })
                .collect::<Vec<_>>()
        })
    });
    let talking_to = move || match store.current_node() {
        Some((id, Some(url))) => format!("This browser talks to node {id} at {url}."),
        Some((id, None)) => format!("This browser talks to node {id}."),
        None => "This browser has not reached any node yet.".to_owned(),
    };
    view! {
        <h1>"Cluster"</h1>
        <p class="lead" data-testid="talking-to">{talking_to}</p>
        <table class="grid" data-testid="cluster-table">
            <thead>
                <tr>
                    <th scope="col">"Node"</th>
                    <th scope="col">"HTTP"</th>
                    <th scope="col">"Raft"</th>
                    <th scope="col">"Role"</th>
                    <th scope="col" class="num">"Term"</th>
                    <th scope="col" class="num">"Last log"</th>
                    <th scope="col" class="num">"Commit"</th>
                    <th scope="col" class="num">"Applied"</th>
                    <th scope="col">"State digest"</th>
                    <th scope="col">"Answers this browser"</th>
                    <th scope="col">"Leader reaches it"</th>
                </tr>
            </thead>
            <tbody>
                <For each=move || rows.get() key=|row| format!("{row:?}") let:row>
                    <ClusterRow row/>
                </For>
            </tbody>
        </table>
        <p class="hint">
            "Roles, terms and indexes are each node's own report; \"leader reaches it\" is the leader's view of its followers."
        </p>
    }
}

#[component]
fn ClusterRow(row: Row) -> impl IntoView {
    let id = row.member.id;
    let view_of = row.own_view.clone();
    let cell =
        move |f: fn(&ClusterView) -> String| view_of.as_ref().map_or_else(|| "—".to_owned(), f);
    let answers = match (row.probed, row.own_view.is_some()) {
        (false, _) => view! { <span class="badge unknown">"not probed yet"</span> }.into_any(),
        (true, true) => view! { <span class="badge up">"✓ yes"</span> }.into_any(),
        (true, false) => view! { <span class="badge down">"✗ no"</span> }.into_any(),
    };
    let reached = match row.leader_reaches {
        Some(true) => "✓ yes",
        Some(false) => "✗ no",
        None => "—",
    };
    view! {
        <tr data-testid=format!("node-{id}") class:leader=row.is_leader class:ours=row.is_ours>
            <th scope="row">
                {format!("Node {id}")}
                {row.is_leader.then(|| view! { <span class="badge leader">"★ leader"</span> })}
                {row.is_ours.then(|| view! { <span class="badge ours">"this browser"</span> })}
                {(!row.member.voter).then(|| view! { <span class="badge learner">"learner"</span> })}
            </th>
            <td class="mono">{row.member.http_url.clone().unwrap_or_else(|| "unknown yet".to_owned())}</td>
            <td class="mono">{row.member.raft_addr.clone()}</td>
            <td data-testid="role">{cell(|v| v.role.to_string())}</td>
            <td class="num">{cell(|v| v.term.to_string())}</td>
            <td class="num">{cell(|v| index(v.last_log_index))}</td>
            <td class="num">{cell(|v| index(v.commit_index))}</td>
            <td class="num">{cell(|v| index(v.applied_index))}</td>
            <td class="mono">{cell(|v| v.state_digest.clone())}</td>
            <td data-testid="answers">{answers}</td>
            <td>{reached}</td>
        </tr>
    }
}
