use super::*;
use crate::domain::{AccessRole, FilamentType, Text};
use proptest::prelude::*;

fn id(raw: &str) -> Id {
    Id::parse(raw).expect("test id")
}
fn text(raw: &str) -> Text {
    Text::parse(raw).expect("test text")
}
fn propose(command: Command) -> Proposal {
    Proposal {
        command,
        at_ms: 0,
        idempotency: None,
    }
}
fn printer(raw: &str) -> Command {
    Command::CreatePrinter(Printer::new(id(raw), text("Prusa"), text("MK4")))
}
fn spool(raw: &str, total: u64, remaining: u64) -> Command {
    Command::CreateFilament(Filament {
        id: id(raw),
        kind: FilamentType::Pla,
        color: text("red"),
        total_weight_in_grams: total,
        remaining_weight_in_grams: remaining,
    })
}
fn job(raw: &str, filament: &str, grams: u64) -> Command {
    Command::CreatePrintJob(PrintJob::queued(
        id(raw),
        id("p1"),
        id(filament),
        text("part.gcode"),
        grams,
    ))
}
fn set(raw: &str, status: JobStatus) -> Command {
    Command::SetJobStatus {
        job_id: id(raw),
        status,
        if_match: None,
    }
}
fn token(raw: &str, hash: &str, role: AccessRole) -> Command {
    Command::CreateToken(ApiToken {
        id: id(raw),
        name: text("front desk"),
        role,
        secret_sha256: hash.to_owned(),
        created_ms: 0,
        revoked_ms: None,
    })
}
fn revoke(raw: &str) -> Command {
    Command::RevokeToken { token_id: id(raw) }
}
fn farm(commands: Vec<Command>) -> FarmState {
    let mut state = FarmState::default();
    for command in commands {
        let outcome = state.apply(&propose(command.clone()));
        assert!(
            !matches!(outcome, Outcome::Rejected(_)),
            "setup command {command:?} was rejected: {outcome:?}"
        );
    }
    state
}
fn rejection(state: &mut FarmState, command: Command) -> Rejection {
    match state.apply(&propose(command)) {
        Outcome::Rejected(rejection) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}
fn remaining(state: &FarmState, filament: &str) -> u64 {
    state
        .raw_filament(&id(filament))
        .expect("filament")
        .remaining_weight_in_grams
}

#[test]
fn a_second_create_with_an_existing_id_is_a_duplicate_and_changes_nothing() {
    let mut state = farm(vec![
        printer("p1"),
        spool("f1", 100, 100),
        job("j1", "f1", 10),
    ]);
    let before = state.to_snapshot();
    for command in [printer("p1"), spool("f1", 5, 5), job("j1", "f1", 1)] {
        assert!(matches!(
            rejection(&mut state, command),
            Rejection::DuplicateId { .. }
        ));
    }
    assert_eq!(state.to_snapshot(), before);
}

#[test]
fn a_job_on_an_unknown_printer_or_filament_is_rejected() {
    let mut state = farm(vec![printer("p1"), spool("f1", 100, 100)]);
    assert_eq!(
        rejection(&mut state, job("j1", "nope", 1)),
        Rejection::UnknownFilament(id("nope"))
    );
    let mut other_printer = job("j2", "f1", 1);
    if let Command::CreatePrintJob(j) = &mut other_printer {
        j.printer_id = Some(id("ghost"));
    }
    assert_eq!(
        rejection(&mut state, other_printer),
        Rejection::UnknownPrinter(id("ghost"))
    );
    assert_eq!(state.counts(), (1, 1, 0));
}

#[test]
fn a_job_needing_more_filament_than_is_available_is_rejected() {
    let mut state = farm(vec![
        printer("p1"),
        spool("f1", 1000, 300),
        job("j1", "f1", 200),
    ]);
    assert_eq!(
        rejection(&mut state, job("j2", "f1", 101)),
        Rejection::InsufficientFilament {
            filament_id: id("f1"),
            requested: 101,
            available: 100
        }
    );
    assert!(matches!(
        state.apply(&propose(job("j3", "f1", 100))),
        Outcome::Created(_)
    ));
    let view = state.filament(&id("f1")).expect("filament");
    assert_eq!(view.reserved_weight_in_grams, 300);
    assert_eq!(view.available_weight_in_grams, 0);
}

#[test]
fn done_deducts_the_weight_and_releases_the_reservation() {
    let mut state = farm(vec![
        printer("p1"),
        spool("f1", 1000, 1000),
        job("j1", "f1", 250),
        set("j1", JobStatus::Running),
    ]);
    assert_eq!(state.reserved(&id("f1")), 250);
    let outcome = state.apply(&propose(set("j1", JobStatus::Done)));
    assert!(
        matches!(outcome, Outcome::Updated(Entity::PrintJob(ref j)) if j.status == JobStatus::Done)
    );
    assert_eq!(remaining(&state, "f1"), 750);
    assert_eq!(state.reserved(&id("f1")), 0);
}

#[test]
fn cancel_releases_the_reservation_and_changes_no_filament() {
    for path in [
        vec![set("j1", JobStatus::Canceled)],
        vec![
            set("j1", JobStatus::Running),
            set("j1", JobStatus::Canceled),
        ],
    ] {
        let mut commands = vec![printer("p1"), spool("f1", 1000, 1000), job("j1", "f1", 250)];
        commands.extend(path);
        let state = farm(commands);
        assert_eq!(remaining(&state, "f1"), 1000);
        assert_eq!(state.reserved(&id("f1")), 0);
    }
}

#[test]
fn every_illegal_transition_is_refused_and_changes_nothing() {
    use JobStatus::*;
    // Paths that bring j1 into each status.
    let reach = |status: JobStatus| -> Vec<Command> {
        match status {
            Queued => vec![],
            Running => vec![set("j1", Running)],
            Done => vec![set("j1", Running), set("j1", Done)],
            Canceled => vec![set("j1", Canceled)],
        }
    };
    for from in JobStatus::ALL {
        for to in JobStatus::ALL {
            let mut commands = vec![printer("p1"), spool("f1", 1000, 1000), job("j1", "f1", 100)];
            commands.extend(reach(from));
            let mut state = farm(commands);
            let before = state.to_snapshot();
            let outcome = state.apply(&propose(set("j1", to)));
            if from.can_become(to) {
                assert!(matches!(outcome, Outcome::Updated(_)), "{from} -> {to}");
            } else {
                assert_eq!(
                    outcome,
                    Outcome::Rejected(Rejection::IllegalTransition { from, to }),
                    "{from} -> {to}"
                );
                assert_eq!(state.to_snapshot(), before, "{from} -> {to}");
            }
        }
    }
}

#[test]
fn a_status_change_of_an_unknown_job_is_rejected() {
    let mut state = FarmState::default();
    assert_eq!(
        rejection(&mut state, set("ghost", JobStatus::Running)),
        Rejection::UnknownJob(id("ghost"))
    );
}

fn keyed(command: Command, key: &str, fingerprint: u64, at_ms: u64) -> Proposal {
    Proposal {
        command,
        at_ms,
        idempotency: Some(IdempotencyClaim {
            key: key.to_owned(),
            fingerprint,
        }),
    }
}

#[test]
fn a_retried_idempotent_request_returns_the_first_outcome_and_applies_once() {
    let mut state = farm(vec![printer("p1"), spool("f1", 1000, 1000)]);
    let first = state.apply(&keyed(job("j1", "f1", 100), "k1", 7, 1));
    // The retry carries a different generated id: it must not create a second job.
    let retry = state.apply(&keyed(job("j2", "f1", 100), "k1", 7, 2));
    assert_eq!(first, retry);
    assert_eq!(state.counts().2, 1);
    assert_eq!(state.reserved(&id("f1")), 100);
}

#[test]
fn the_same_key_with_another_request_is_refused() {
    let mut state = farm(vec![printer("p1")]);
    state.apply(&keyed(printer("p2"), "k1", 1, 1));
    assert_eq!(
        state.apply(&keyed(printer("p3"), "k1", 2, 2)),
        Outcome::Rejected(Rejection::IdempotencyKeyReused)
    );
    assert!(state.printer(&id("p3")).is_none());
}

#[test]
fn idempotency_keys_expire_after_the_retention_time() {
    let mut state = FarmState::default();
    state.apply(&keyed(printer("p1"), "k1", 1, 1_000));
    assert!(state.idempotency_record("k1").is_some());
    // A leader with a clock in the past does not move time backwards…
    state.apply(&propose(printer("p2")));
    assert!(state.idempotency_record("k1").is_some());
    // …and once the retention has passed, the key is forgotten.
    let later = 1_000 + IDEMPOTENCY_RETENTION_MS + 1;
    state.apply(&Proposal {
        at_ms: later,
        ..propose(printer("p3"))
    });
    assert!(state.idempotency_record("k1").is_none());
    assert!(state
        .take_changes()
        .contains(&Change::Idempotency("k1".to_owned())));
}

#[test]
fn changes_name_exactly_the_rows_an_apply_touched() {
    let mut state = farm(vec![
        printer("p1"),
        spool("f1", 1000, 1000),
        job("j1", "f1", 10),
    ]);
    state.take_changes();
    state.apply(&propose(set("j1", JobStatus::Running)));
    assert_eq!(state.take_changes(), vec![Change::PrintJob(id("j1"))]);
    state.apply(&propose(set("j1", JobStatus::Done)));
    assert_eq!(
        state.take_changes(),
        vec![Change::Filament(id("f1")), Change::PrintJob(id("j1"))]
    );
}

// ---- properties over random command sequences -------------------------------------

fn arb_command() -> impl Strategy<Value = Command> {
    let ids = prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]);
    let spools = prop::sample::select(vec!["f1", "f2", "f3"]);
    let tokens = prop::sample::select(vec!["t1", "t2"]);
    let hashes = prop::sample::select(vec!["aa", "bb", "cc"]);
    let printers = prop::sample::select(vec!["p1", "p2"]);
    prop_oneof![
        (spools.clone(), 1u64..2000, 0u64..2000).prop_map(|(f, total, rem)| spool(
            f,
            total,
            rem.min(total)
        )),
        (ids.clone(), spools.clone(), 1u64..600).prop_map(|(j, f, g)| job(j, f, g)),
        (ids.clone(), prop::sample::select(JobStatus::ALL.to_vec())).prop_map(|(j, s)| set(j, s)),
        (
            tokens.clone(),
            hashes,
            prop::sample::select(AccessRole::ALL.to_vec())
        )
            .prop_map(|(t, h, role)| token(t, h, role)),
        tokens.prop_map(revoke),
        prop::sample::select(vec!["aa", "dd"]).prop_map(|h| Command::RevokeBootstrapToken {
            secret_sha256: h.to_owned()
        }),
        Just(connect("p1")),
        Just(Command::DisconnectPrinter {
            printer_id: id("p1")
        }),
        Just(add_file("g1", Some(7.5))),
        Just(Command::DeleteFile { file_id: id("g1") }),
        (ids.clone(), spools.clone()).prop_map(|(j, f)| file_job(j, f, "g1")),
        (ids.clone(), 1u64..4).prop_map(|(j, term)| drive(
            term,
            DriverReport::Dispatching {
                job_id: id(j),
                printer_id: None
            }
        )),
        (ids.clone(), printers.clone()).prop_map(|(j, p)| dispatch_to(j, p)),
        Just(connect("p2")),
        (printers.clone(), prop::option::of(spools.clone())).prop_map(|(p, f)| load(p, f)),
        printers
            .clone()
            .prop_map(|p| Command::ClearBed { printer_id: id(p) }),
        (ids.clone(), prop::option::of(spools.clone())).prop_map(|(j, f)| farm_job(
            j,
            f,
            f.is_none().then_some((FilamentType::Pla, "red"))
        )),
        (
            ids.clone(),
            prop::sample::select(vec![0usize, 1, 2, 3]),
            ids.clone()
        )
            .prop_map(|(j, how, anchor)| place(
                j,
                match how {
                    0 => QueuePlace::First,
                    1 => QueuePlace::Last,
                    2 => QueuePlace::Before(id(anchor)),
                    _ => QueuePlace::After(id(anchor)),
                }
            )),
        (ids.clone(), spools.clone(), 1usize..4).prop_map(|(j, f, n)| Command::CreatePrintJobs(
            (0..n)
                .map(|i| match farm_job(&format!("{j}{i}"), Some(f), None) {
                    Command::CreatePrintJob(job) => job,
                    _ => unreachable!(),
                })
                .collect()
        )),
        (ids.clone(), 1u64..4)
            .prop_map(|(j, term)| drive(term, DriverReport::Started { job_id: id(j) })),
        (ids.clone(), 1u64..4, any::<bool>()).prop_map(|(j, term, ok)| drive(
            term,
            DriverReport::Finished {
                job_id: id(j),
                outcome: if ok {
                    PrintOutcome::Done
                } else {
                    failed("jammed")
                }
            }
        )),
    ]
}

fn check_invariants(
    state: &FarmState,
    done_by_spool: &BTreeMap<Id, u64>,
    totals: &BTreeMap<Id, u64>,
) {
    for view in state.filaments() {
        let f = &view.filament;
        assert!(f.remaining_weight_in_grams <= f.total_weight_in_grams);
        assert!(view.reserved_weight_in_grams <= f.remaining_weight_in_grams);
        let live: u64 = state
            .jobs()
            .filter(|j| j.filament_id.as_ref() == Some(&f.id) && j.status.reserves_filament())
            .map(|j| j.print_weight_in_grams)
            .sum();
        assert_eq!(view.reserved_weight_in_grams, live);
        let done = done_by_spool.get(&f.id).copied().unwrap_or(0);
        assert_eq!(f.remaining_weight_in_grams, totals[&f.id] - done);
    }
}

proptest! {
    #[test]
    fn random_commands_never_oversell_filament(commands in prop::collection::vec(arb_command(), 1..80)) {
        let mut state = farm(vec![printer("p1"), printer("p2")]);
        // A job is sent to a printer once, and stays with it.
        let mut sent_to: BTreeMap<Id, Option<Id>> = BTreeMap::new();
        // The "initial remaining" of each spool, and what Done jobs took from it.
        let mut initial = BTreeMap::new();
        let mut done = BTreeMap::new();
        let mut done_ids = BTreeSet::new();
        for command in &commands {
            let outcome = state.apply(&propose(command.clone()));
            match (command, &outcome) {
                (Command::CreateFilament(f), Outcome::Created(_)) => {
                    initial.insert(f.id.clone(), f.remaining_weight_in_grams);
                }
                (Command::SetJobStatus { status: JobStatus::Done, .. }, Outcome::Updated(Entity::PrintJob(j)))
                | (Command::Drive { report: DriverReport::Finished { outcome: PrintOutcome::Done, .. }, .. }, Outcome::Updated(Entity::PrintJob(j)))
                    if j.status == JobStatus::Done && j.finished_at.is_some() && !done_ids.contains(&j.id) => {
                    done_ids.insert(j.id.clone());
                    if let Some(f) = &j.filament_id {
                        *done.entry(f.clone()).or_insert(0) += j.print_weight_in_grams;
                    }
                }
                _ => {}
            }
            check_invariants(&state, &done, &initial);
            for job in state.jobs().filter(|j| j.dispatch.is_some()) {
                let first = sent_to.entry(job.id.clone()).or_insert(job.printer_id.clone());
                prop_assert_eq!(first, &job.printer_id);
                prop_assert!(job.printer_id.is_some() && job.filament_id.is_some());
            }
            for printer in state.printers() {
                prop_assert!(state.live_jobs_of(&printer.id).filter(|j| j.dispatch.is_some()).count() <= 1);
            }
            let queued: BTreeSet<&Id> = state.jobs().filter(|j| j.status == JobStatus::Queued).map(|j| &j.id).collect();
            prop_assert_eq!(state.queued_jobs().map(|j| &j.id).collect::<BTreeSet<_>>(), queued);
        }
    }

    #[test]
    fn replicas_fed_the_same_log_are_equal_and_snapshots_round_trip(commands in prop::collection::vec(arb_command(), 1..60)) {
        let mut a = farm(vec![printer("p1"), printer("p2")]);
        let mut b = farm(vec![printer("p1"), printer("p2")]);
        for command in &commands {
            let pa = a.apply(&propose(command.clone()));
            let pb = b.apply(&propose(command.clone()));
            prop_assert_eq!(pa, pb);
        }
        prop_assert_eq!(a.to_snapshot(), b.to_snapshot());
        prop_assert_eq!(a.digest(), b.digest());
        let json = serde_json::to_vec(&a.to_snapshot()).expect("serialise");
        let restored = FarmState::from_snapshot(serde_json::from_slice(&json).expect("parse"));
        prop_assert_eq!(restored.to_snapshot(), a.to_snapshot());
        prop_assert_eq!(restored.digest(), a.digest());
        let order = |s: &FarmState| s.queued_jobs().map(|j| j.id.clone()).collect::<Vec<_>>();
        prop_assert_eq!(order(&restored), order(&a));
        for view in a.filaments() {
            prop_assert_eq!(restored.reserved(&view.filament.id), view.reserved_weight_in_grams);
        }
    }
}

#[test]
fn the_digest_differs_when_the_state_differs() {
    let a = farm(vec![printer("p1"), spool("f1", 10, 10)]);
    let b = farm(vec![printer("p1"), spool("f1", 10, 9)]);
    assert_ne!(a.digest(), b.digest());
    let c = farm(vec![spool("f1", 10, 10), printer("p1")]);
    assert_eq!(a.digest(), c.digest(), "insertion order must not matter");
}

#[test]
fn tokens_are_found_by_their_hash_refused_twice_and_kept_marked_once_revoked() {
    let mut state = farm(vec![token("t1", "aa", AccessRole::Operator)]);
    let found = state.token_by_secret_hash("aa").expect("found by hash");
    assert_eq!(
        (found.id.as_str(), found.role),
        ("t1", AccessRole::Operator)
    );
    let before = state.digest();
    // Same id, or same secret under another id: refused, nothing changes.
    assert!(matches!(
        rejection(&mut state, token("t1", "bb", AccessRole::Admin)),
        Rejection::DuplicateId {
            kind: EntityKind::Token,
            ..
        }
    ));
    assert!(matches!(
        rejection(&mut state, token("t2", "aa", AccessRole::Admin)),
        Rejection::DuplicateId { .. }
    ));
    assert_eq!(state.digest(), before);
    assert!(state.token_by_secret_hash("bb").is_none());

    let revoked = state.apply(&propose(revoke("t1")));
    assert!(matches!(&revoked, Outcome::Updated(Entity::Token(t)) if t.revoked_ms.is_some()));
    let found = state
        .token_by_secret_hash("aa")
        .expect("still known by its hash");
    assert!(found.revoked_ms.is_some(), "and marked revoked");
    assert_eq!(
        state.apply(&propose(revoke("t1"))),
        revoked,
        "again: the same answer"
    );
    assert_eq!(
        rejection(&mut state, revoke("t9")),
        Rejection::UnknownToken(id("t9"))
    );
}

#[test]
fn the_bootstrap_token_is_revoked_by_its_hash_once() {
    let mut state = FarmState::default();
    let revoke = Command::RevokeBootstrapToken {
        secret_sha256: "boot".to_owned(),
    };
    let first = state.apply(&propose(revoke.clone()));
    let token = state.token_by_secret_hash("boot").expect("recorded");
    assert_eq!(
        (token.id.as_str(), token.role, token.revoked_ms.is_some()),
        ("bootstrap", AccessRole::Admin, true)
    );
    assert_eq!(state.apply(&propose(revoke)), first);
}

#[test]
fn a_snapshot_from_before_tokens_loads_with_none() {
    let old = r#"{"printers":[],"filaments":[],"print_jobs":[],"idempotency":[],"clock_ms":5}"#;
    let snapshot: FarmSnapshot = serde_json::from_str(old).expect("old snapshot");
    let state = FarmState::from_snapshot(snapshot);
    assert_eq!((state.tokens().count(), state.clock_ms()), (0, 5));
}

// ---- pages ------------------------------------------------------------------------

/// Every page walk the API can ask for, answered by the naive way: filter all jobs in id
/// order, reverse for `desc`, skip up to the cursor.
fn naive_page(state: &FarmState, filter: &JobFilter, paging: &Paging) -> Vec<Id> {
    let mut ids: Vec<Id> = state
        .jobs()
        .filter(|job| filter.matches(job))
        .map(|job| job.id.clone())
        .collect();
    if paging.order == Order::Desc {
        ids.reverse();
    }
    match &paging.after {
        None => ids,
        Some(after) => ids
            .into_iter()
            .filter(|id| match paging.order {
                Order::Asc => id > after,
                Order::Desc => id < after,
            })
            .collect(),
    }
}

proptest! {
    #[test]
    fn indexed_job_pages_equal_a_scan_for_every_filter_order_and_cursor(
        commands in prop::collection::vec(arb_command(), 1..80),
        status in prop::option::of(prop::sample::select(JobStatus::ALL.to_vec())),
        filament in prop::option::of(prop::sample::select(vec!["f1", "f2", "nope"])),
        on_printer in prop::option::of(prop::sample::select(vec!["p1", "p9"])),
        after in prop::option::of(prop::sample::select(vec!["a", "c", "d", "zz", "0"])),
        desc in any::<bool>(),
    ) {
        let mut state = farm(vec![printer("p1")]);
        for command in &commands {
            state.apply(&propose(command.clone()));
        }
        let filter = JobFilter {
            status,
            printer_id: on_printer.map(id),
            filament_id: filament.map(id),
        };
        let paging = Paging {
            limit: None,
            after: after.map(id),
            order: if desc { Order::Desc } else { Order::Asc },
        };
        let indexed: Vec<Id> = state.jobs_from(&filter, &paging).map(|j| j.id.clone()).collect();
        prop_assert_eq!(indexed, naive_page(&state, &filter, &paging));
        let restored = FarmState::from_snapshot(state.to_snapshot());
        let indexed: Vec<Id> = restored.jobs_from(&filter, &paging).map(|j| j.id.clone()).collect();
        prop_assert_eq!(indexed, naive_page(&state, &filter, &paging));
        for s in JobStatus::ALL {
            prop_assert_eq!(state.job_count(s), state.jobs().filter(|j| j.status == s).count());
        }
    }
}

#[test]
fn printer_and_spool_pages_continue_after_the_cursor_both_ways() {
    let state = farm(vec![
        printer("p1"),
        printer("p2"),
        printer("p3"),
        spool("f1", 10, 10),
        spool("f2", 10, 10),
    ]);
    let page = |after: Option<&str>, order| Paging {
        limit: None,
        after: after.map(id),
        order,
    };
    let printers = |paging: Paging| -> Vec<String> {
        state
            .printers_from(&paging)
            .map(|p| p.id.to_string())
            .collect()
    };
    assert_eq!(printers(page(None, Order::Asc)), ["p1", "p2", "p3"]);
    assert_eq!(printers(page(Some("p1"), Order::Asc)), ["p2", "p3"]);
    assert_eq!(printers(page(Some("p2"), Order::Desc)), ["p1"]);
    assert_eq!(printers(page(None, Order::Desc)), ["p3", "p2", "p1"]);
    let spools: Vec<String> = state
        .filaments_from(&page(Some("f1"), Order::Asc))
        .map(|f| f.filament.id.to_string())
        .collect();
    assert_eq!(spools, ["f2"]);
}

// ---- times --------------------------------------------------------------------------

fn at(command: Command, at_ms: u64) -> Proposal {
    Proposal {
        command,
        at_ms,
        idempotency: None,
    }
}

#[test]
fn jobs_are_stamped_with_the_proposals_time_and_never_go_back() {
    let mut state = farm(vec![printer("p1"), spool("f1", 100, 100)]);
    let mut claimed = match job("j1", "f1", 5) {
        Command::CreatePrintJob(job) => job,
        _ => unreachable!(),
    };
    // Whatever a proposal claims, the times come from the proposal's stamp.
    claimed.created_at = Some(Timestamp::from_unix_ms(1));
    claimed.finished_at = Some(Timestamp::from_unix_ms(2));
    state.apply(&at(Command::CreatePrintJob(claimed), 10_000));
    state.apply(&at(set("j1", JobStatus::Running), 70_000));
    // A later leader whose clock is behind: its stamp does not take the farm's time back.
    state.apply(&at(set("j1", JobStatus::Done), 65_000));
    let job = state.job(&id("j1")).expect("job");
    let ms = |t: Option<Timestamp>| t.map(Timestamp::unix_ms);
    assert_eq!(
        (ms(job.created_at), ms(job.started_at), ms(job.finished_at)),
        (Some(10_000), Some(70_000), Some(70_000))
    );
    assert_eq!(job.run_millis(Timestamp::from_unix_ms(999_999)), Some(0));

    state.apply(&at(job_cmd("j2"), 80_000));
    state.apply(&at(set("j2", JobStatus::Canceled), 95_000));
    let cancelled = state.job(&id("j2")).expect("job");
    assert_eq!(ms(cancelled.started_at), None, "it never ran");
    assert_eq!(ms(cancelled.finished_at), Some(95_000));
    assert_eq!(cancelled.run_millis(Timestamp::from_unix_ms(100_000)), None);

    state.apply(&at(job_cmd("j3"), 100_000));
    state.apply(&at(set("j3", JobStatus::Running), 110_000));
    let running = state.job(&id("j3")).expect("job");
    assert_eq!(
        running.run_millis(Timestamp::from_unix_ms(125_000)),
        Some(15_000),
        "a running job has run until now"
    );
}

fn job_cmd(raw: &str) -> Command {
    job(raw, "f1", 5)
}

#[test]
fn jobs_stored_before_times_existed_load_without_times_and_keep_their_digest() {
    let old = r#"{"id":"j1","printer_id":"p1","filament_id":"f1","filepath":"a.gcode","print_weight_in_grams":5,"status":"Done"}"#;
    let job: PrintJob = serde_json::from_str(old).expect("an old job loads");
    assert_eq!(
        (job.created_at, job.started_at, job.finished_at),
        (None, None, None)
    );
    // Written back as it was, so its hash (and the state digest) does not change.
    assert_eq!(serde_json::to_string(&job).expect("serialise"), old);
}

// ---- events -------------------------------------------------------------------------

fn kinds(state: &mut FarmState) -> Vec<&'static str> {
    state
        .take_events()
        .iter()
        .map(|e| e.kind.as_str())
        .collect()
}

#[test]
fn each_change_yields_its_events_with_the_objects_after_it() {
    let mut state = FarmState::default();
    state.apply(&propose(printer("p1")));
    state.apply(&propose(spool("f1", 100, 100)));
    assert_eq!(kinds(&mut state), ["printer.created", "filament.created"]);
    state.apply(&propose(job("j1", "f1", 30)));
    let events = state.take_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::JobCreated);
    match &events[1].data {
        Entity::Filament(view) => assert_eq!(view.available_weight_in_grams, 70),
        other => panic!("a spool, not {other:?}"),
    }
    state.apply(&propose(set("j1", JobStatus::Running)));
    assert_eq!(
        kinds(&mut state),
        ["job.status"],
        "running keeps the reservation"
    );
    state.apply(&propose(set("j1", JobStatus::Done)));
    let events = state.take_events();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::JobStatus, EventKind::FilamentUpdated]
    );
    match &events[1].data {
        Entity::Filament(view) => assert_eq!(view.filament.remaining_weight_in_grams, 70),
        other => panic!("a spool, not {other:?}"),
    }
}

#[test]
fn refusals_replays_and_tokens_yield_no_events() {
    let mut state = farm(vec![printer("p1"), spool("f1", 100, 100)]);
    state.take_events();
    state.apply(&propose(printer("p1")));
    state.apply(&propose(job("j1", "f1", 500)));
    state.apply(&propose(set("nope", JobStatus::Done)));
    state.apply(&propose(token("t1", "aa", AccessRole::Admin)));
    state.apply(&propose(revoke("t1")));
    assert_eq!(kinds(&mut state), Vec::<&str>::new());
    state.apply(&keyed(job("j1", "f1", 5), "k", 1, 0));
    assert_eq!(kinds(&mut state), ["job.created", "filament.updated"]);
    state.apply(&keyed(job("j1", "f1", 5), "k", 1, 0));
    assert_eq!(
        kinds(&mut state),
        Vec::<&str>::new(),
        "a replay changes nothing"
    );
}

#[test]
fn if_match_lets_one_of_two_racing_moves_through() {
    let mut state = farm(vec![
        printer("p1"),
        spool("f1", 100, 100),
        job("j1", "f1", 5),
    ]);
    let read = crate::api::etag::of(state.job(&id("j1")).expect("job"));
    let moved = |status| Command::SetJobStatus {
        job_id: id("j1"),
        status,
        if_match: Some(vec![read]),
    };
    assert!(matches!(
        state.apply(&propose(moved(JobStatus::Running))),
        Outcome::Updated(_)
    ));
    let second = rejection(&mut state, moved(JobStatus::Canceled));
    assert!(matches!(second, Rejection::JobChanged { .. }), "{second:?}");
    assert_eq!(
        state.job(&id("j1")).map(|j| j.status),
        Some(JobStatus::Running)
    );
    let now = crate::api::etag::of(state.job(&id("j1")).expect("job"));
    let with_now = Command::SetJobStatus {
        job_id: id("j1"),
        status: JobStatus::Done,
        if_match: Some(vec![read, now]),
    };
    assert!(matches!(
        state.apply(&propose(with_now)),
        Outcome::Updated(_)
    ));
}

#[test]
fn status_changes_logged_before_if_match_existed_still_load() {
    let old = r#"{"SetJobStatus":{"job_id":"j1","status":"Running"}}"#;
    let command: Command = serde_json::from_str(old).expect("an old entry loads");
    assert_eq!(command, set("j1", JobStatus::Running));
    assert_eq!(serde_json::to_string(&command).expect("serialise"), old);
}

// ---- printers driven through their hosts ----------------------------------------------

fn connect(printer: &str) -> Command {
    Command::ConnectPrinter {
        printer_id: id(printer),
        connection: Connection {
            kind: crate::domain::ConnectionKind::OctoPrint,
            url: "http://octopi.local".to_owned(),
            api_key_set: true,
            auto_dispatch: true,
            self_clearing: false,
        },
        api_key: Some(SealedSecret {
            nonce: "00".to_owned(),
            ciphertext: "ff".to_owned(),
        }),
    }
}
fn add_file(raw: &str, grams: Option<f64>) -> Command {
    Command::AddFile(GcodeFile {
        id: id(raw),
        name: text("benchy.gcode"),
        size: 100,
        sha256: "ab".repeat(32),
        filament_grams: grams.map(|g| crate::domain::Quantity::new(g).expect("grams")),
        filament_mm: None,
        print_seconds: Some(60),
        slicer: None,
        uploaded_at: None,
    })
}
fn file_job(raw: &str, filament: &str, file: &str) -> Command {
    let mut command = job(raw, filament, 8);
    if let Command::CreatePrintJob(job) = &mut command {
        job.file_id = Some(id(file));
    }
    command
}
fn drive(term: u64, report: DriverReport) -> Command {
    Command::Drive { term, report }
}
fn failed(reason: &str) -> PrintOutcome {
    PrintOutcome::Failed {
        reason: text(reason),
    }
}
fn status_of(state: &FarmState, job: &str) -> JobStatus {
    state.job(&id(job)).expect("job").status
}
fn driven_farm() -> FarmState {
    farm(vec![
        printer("p1"),
        spool("f1", 100, 100),
        connect("p1"),
        add_file("g1", Some(7.5)),
        file_job("j1", "f1", "g1"),
    ])
}

#[test]
fn a_dispatched_job_runs_and_ends_on_its_printers_word_and_deducts_once() {
    let mut state = driven_farm();
    assert_eq!(
        state.next_job_for(&id("p1")).map(|j| j.id.as_str()),
        Some("j1")
    );
    state.apply(&propose(drive(
        2,
        DriverReport::Dispatching {
            job_id: id("j1"),
            printer_id: None,
        },
    )));
    let dispatched = state.job(&id("j1")).expect("job").clone();
    assert_eq!(dispatched.dispatch.map(|d| d.term), Some(2));
    assert_eq!(dispatched.status, JobStatus::Queued);
    assert_eq!(
        state.next_job_for(&id("p1")),
        None,
        "dispatched jobs are not offered again"
    );
    assert_eq!(
        state.dispatched_job_of(&id("p1")).map(|j| j.id.as_str()),
        Some("j1")
    );
    state.apply(&propose(drive(
        2,
        DriverReport::Started { job_id: id("j1") },
    )));
    assert_eq!(status_of(&state, "j1"), JobStatus::Running);
    let done = drive(
        3,
        DriverReport::Finished {
            job_id: id("j1"),
            outcome: PrintOutcome::Done,
        },
    );
    state.apply(&propose(done.clone()));
    assert_eq!(status_of(&state, "j1"), JobStatus::Done);
    assert_eq!(remaining(&state, "f1"), 92);
    // A new driver reconciling reports it again: nothing changes.
    let before = state.to_snapshot();
    assert!(matches!(state.apply(&propose(done)), Outcome::Updated(_)));
    assert_eq!(state.to_snapshot(), before);
    assert_eq!(state.dispatched_job_of(&id("p1")), None);
}

#[test]
fn a_print_that_ends_before_it_was_seen_running_still_ends_with_times() {
    let mut state = driven_farm();
    state.apply(&propose(drive(
        1,
        DriverReport::Dispatching {
            job_id: id("j1"),
            printer_id: None,
        },
    )));
    state.apply(&propose(drive(
        1,
        DriverReport::Finished {
            job_id: id("j1"),
            outcome: failed("Print failed"),
        },
    )));
    let job = state.job(&id("j1")).expect("job");
    assert_eq!(job.status, JobStatus::Canceled);
    assert_eq!(job.reason.as_ref().map(Text::as_str), Some("Print failed"));
    assert!(job.started_at.is_none() && job.finished_at.is_some());
    assert_eq!(
        remaining(&state, "f1"),
        100,
        "a failed print deducts nothing"
    );
    assert_eq!(state.reserved(&id("f1")), 0);
}

#[test]
fn reports_of_a_deposed_driver_are_fenced_off() {
    let mut state = driven_farm();
    state.apply(&propose(drive(
        5,
        DriverReport::Dispatching {
            job_id: id("j1"),
            printer_id: None,
        },
    )));
    let before = state.to_snapshot();
    assert_eq!(
        rejection(
            &mut state,
            drive(4, DriverReport::Started { job_id: id("j1") })
        ),
        Rejection::Fenced {
            term: 4,
            current: 5
        }
    );
    assert_eq!(state.to_snapshot(), before);
    assert_eq!(state.driver_term(), 5);
}

#[test]
fn only_a_queued_job_with_a_file_on_a_connected_printer_is_dispatched() {
    let mut state = driven_farm();
    state.apply(&propose(job("by-hand", "f1", 1)));
    let refused = rejection(
        &mut state,
        drive(
            1,
            DriverReport::Dispatching {
                job_id: id("by-hand"),
                printer_id: None,
            },
        ),
    );
    assert!(
        matches!(refused, Rejection::NotDispatchable { .. }),
        "{refused:?}"
    );
    state.apply(&propose(set("by-hand", JobStatus::Canceled)));
    assert!(matches!(
        rejection(
            &mut state,
            drive(1, DriverReport::Started { job_id: id("j1") })
        ),
        Rejection::NotDispatchable { .. }
    ));
    state.apply(&propose(Command::DisconnectPrinter {
        printer_id: id("p1"),
    }));
    assert!(matches!(
        rejection(
            &mut state,
            drive(
                1,
                DriverReport::Dispatching {
                    job_id: id("j1"),
                    printer_id: None
                }
            )
        ),
        Rejection::NotDispatchable { .. }
    ));
}

#[test]
fn a_dispatched_job_can_only_be_canceled_by_hand_and_a_late_report_does_not_revive_it() {
    let mut state = driven_farm();
    state.apply(&propose(drive(
        1,
        DriverReport::Dispatching {
            job_id: id("j1"),
            printer_id: None,
        },
    )));
    assert_eq!(
        rejection(&mut state, set("j1", JobStatus::Running)),
        Rejection::DrivenByPrinter { job_id: id("j1") }
    );
    state.apply(&propose(set("j1", JobStatus::Canceled)));
    state.apply(&propose(drive(
        1,
        DriverReport::Finished {
            job_id: id("j1"),
            outcome: PrintOutcome::Done,
        },
    )));
    assert_eq!(status_of(&state, "j1"), JobStatus::Canceled);
    assert_eq!(remaining(&state, "f1"), 100);
}

#[test]
fn the_next_job_is_the_oldest_queued_one_with_a_file() {
    let mut state = driven_farm();
    let at = |command, at_ms| Proposal {
        command,
        at_ms,
        idempotency: None,
    };
    state.apply(&at(file_job("a-newer", "f1", "g1"), 50));
    state.apply(&at(job("b-by-hand", "f1", 1), 1));
    assert_eq!(
        state.next_job_for(&id("p1")).map(|j| j.id.as_str()),
        Some("j1")
    );
    state.apply(&propose(set("j1", JobStatus::Canceled)));
    assert_eq!(
        state.next_job_for(&id("p1")).map(|j| j.id.as_str()),
        Some("a-newer")
    );
}

#[test]
fn a_file_in_use_cannot_be_deleted_and_an_unknown_one_cannot_be_printed() {
    let mut state = driven_farm();
    assert_eq!(
        rejection(&mut state, Command::DeleteFile { file_id: id("g1") }),
        Rejection::FileInUse {
            file_id: id("g1"),
            job_id: id("j1")
        }
    );
    assert_eq!(
        rejection(&mut state, file_job("j2", "f1", "ghost")),
        Rejection::UnknownFile(id("ghost"))
    );
    state.apply(&propose(set("j1", JobStatus::Canceled)));
    assert!(matches!(
        state.apply(&propose(Command::DeleteFile { file_id: id("g1") })),
        Outcome::Updated(Entity::File(_))
    ));
    assert!(state.file(&id("g1")).is_none());
}

#[test]
fn a_status_report_is_committed_only_when_it_says_something_new() {
    let mut state = driven_farm();
    let report = |state: crate::domain::PrinterState, message: &str| {
        drive(
            1,
            DriverReport::Status {
                printer_id: id("p1"),
                status: crate::domain::PrinterStatus {
                    state,
                    message: Some(text(message)),
                    job_id: None,
                    since: None,
                },
            },
        )
    };
    let idle = Proposal {
        command: report(crate::domain::PrinterState::Idle, "Operational"),
        at_ms: 10,
        idempotency: None,
    };
    state.apply(&idle);
    state.take_events();
    state.take_changes();
    state.apply(&Proposal {
        at_ms: 20,
        ..idle.clone()
    });
    assert!(
        state.take_events().is_empty(),
        "the same report again emits nothing"
    );
    let since = |state: &FarmState| {
        state
            .printer(&id("p1"))
            .and_then(|p| p.status.clone())
            .and_then(|s| s.since)
    };
    assert_eq!(since(&state), Some(Timestamp::from_unix_ms(10)));
    state.apply(&Proposal {
        command: report(crate::domain::PrinterState::Idle, "Ready"),
        at_ms: 30,
        idempotency: None,
    });
    assert_eq!(
        since(&state),
        Some(Timestamp::from_unix_ms(10)),
        "same state: same since"
    );
    state.apply(&Proposal {
        command: report(crate::domain::PrinterState::Offline, "gone"),
        at_ms: 40,
        idempotency: None,
    });
    assert_eq!(since(&state), Some(Timestamp::from_unix_ms(40)));
    state.apply(&propose(Command::DisconnectPrinter {
        printer_id: id("p1"),
    }));
    let printer = state.printer(&id("p1")).expect("printer");
    assert!(printer.connection.is_none() && printer.status.is_none());
    assert!(state.printer_key(&id("p1")).is_none());
    assert_eq!(
        rejection(&mut state, report(crate::domain::PrinterState::Idle, "x")),
        Rejection::NotConnected(id("p1"))
    );
}

#[test]
fn a_job_of_a_file_takes_its_name_and_grams_unless_given() {
    let file = match add_file("g1", Some(7.2)) {
        Command::AddFile(file) => file,
        _ => unreachable!(),
    };
    let request = |body: &str| crate::api::NewPrintJob::from_json(body.as_bytes()).expect("valid");
    let job = request(r#"{"printer_id":"p1","filament_id":"f1","file_id":"g1"}"#)
        .into_job(id("x"), Some(&file))
        .expect("a job");
    assert_eq!(
        (job.filepath.as_str(), job.print_weight_in_grams),
        ("benchy.gcode", 8)
    );
    assert_eq!(job.file_id, Some(id("g1")));
    let given = request(
        r#"{"printer_id":"p1","filament_id":"f1","file_id":"g1","print_weight_in_grams":20}"#,
    )
    .into_job(id("x"), Some(&file))
    .expect("a job");
    assert_eq!(given.print_weight_in_grams, 20);
    assert_eq!(
        request(r#"{"printer_id":"p1","filament_id":"f1","file_id":"g1"}"#).into_job(id("x"), None),
        Err(Rejection::UnknownFile(id("g1")))
    );
    let weightless = GcodeFile {
        filament_grams: None,
        ..file
    };
    assert_eq!(
        request(r#"{"printer_id":"p1","filament_id":"f1","file_id":"g1"}"#)
            .into_job(id("x"), Some(&weightless)),
        Err(Rejection::FileWithoutWeight(id("g1")))
    );
    let missing = crate::api::NewPrintJob::from_json(br#"{"printer_id":"p1","filament_id":"f1"}"#);
    assert!(matches!(
        missing,
        Err(crate::api::RequestError::Missing { field: "filepath" })
    ));
}

// ---- the farm queue -----------------------------------------------------------------

fn spool_of(raw: &str, kind: FilamentType, color: &str, grams: u64) -> Command {
    Command::CreateFilament(Filament {
        id: id(raw),
        kind,
        color: text(color),
        total_weight_in_grams: grams,
        remaining_weight_in_grams: grams,
    })
}
/// A job of file `g1` for the queue: no printer; a spool or a material.
fn farm_job(raw: &str, spool: Option<&str>, material: Option<(FilamentType, &str)>) -> Command {
    let mut job = PrintJob::queued(id(raw), id("p"), id("f"), text("part.gcode"), 8);
    job.printer_id = None;
    job.filament_id = spool.map(id);
    job.material = material.map(|(kind, color)| crate::domain::Material {
        kind,
        color: text(color),
    });
    job.file_id = Some(id("g1"));
    Command::CreatePrintJob(job)
}
fn load(printer: &str, spool: Option<&str>) -> Command {
    Command::LoadSpool {
        printer_id: id(printer),
        filament_id: spool.map(id),
    }
}
fn dispatch_to(job: &str, printer: &str) -> Command {
    drive(
        1,
        DriverReport::Dispatching {
            job_id: id(job),
            printer_id: Some(id(printer)),
        },
    )
}
fn finish(job: &str) -> Command {
    drive(
        1,
        DriverReport::Finished {
            job_id: id(job),
            outcome: PrintOutcome::Done,
        },
    )
}
fn place(job: &str, place: QueuePlace) -> Command {
    Command::PlaceInQueue {
        job_id: id(job),
        place,
    }
}
fn next_for(state: &FarmState, printer: &str) -> Option<String> {
    state.next_job_for(&id(printer)).map(|j| j.id.to_string())
}
fn queue_ids(state: &FarmState) -> Vec<String> {
    state.queued_jobs().map(|j| j.id.to_string()).collect()
}
/// Two connected printers, p1 and p2, a red and a blue PLA spool, file g1 (7.5 g).
fn queue_farm() -> FarmState {
    farm(vec![
        printer("p1"),
        printer("p2"),
        connect("p1"),
        connect("p2"),
        spool_of("red", FilamentType::Pla, "Red", 100),
        spool_of("blue", FilamentType::Pla, "Blue", 100),
        add_file("g1", Some(7.5)),
    ])
}

#[test]
fn a_job_of_a_material_goes_to_a_printer_with_such_a_spool_and_reserves_it_then() {
    let mut state = queue_farm();
    state.apply(&propose(farm_job(
        "j",
        None,
        Some((FilamentType::Pla, "red")),
    )));
    assert_eq!(
        state.reserved(&id("red")),
        0,
        "nothing reserved while unassigned"
    );
    assert_eq!(next_for(&state, "p1"), None, "p1 says no spool is loaded");
    state.apply(&propose(load("p1", Some("blue"))));
    assert_eq!(next_for(&state, "p1"), None, "blue is not red");
    state.apply(&propose(load("p2", Some("red"))));
    assert_eq!(next_for(&state, "p2").as_deref(), Some("j"));
    let refused = rejection(&mut state, dispatch_to("j", "p1"));
    assert!(
        matches!(&refused, Rejection::NotDispatchable { why, .. } if why.contains("material")),
        "{refused:?}"
    );
    state.apply(&propose(dispatch_to("j", "p2")));
    let job = state.job(&id("j")).expect("job");
    assert_eq!(job.printer_id, Some(id("p2")));
    assert_eq!(job.filament_id, Some(id("red")));
    assert_eq!(state.reserved(&id("red")), 8);
    assert_eq!(
        state.live_jobs_of(&id("p2")).count(),
        1,
        "indexed under its printer now"
    );
}

#[test]
fn a_job_two_printers_pick_goes_to_one_only() {
    let mut state = queue_farm();
    state.apply(&propose(farm_job("j", Some("red"), None)));
    state.apply(&propose(load("p1", Some("red"))));
    assert_eq!(next_for(&state, "p1").as_deref(), Some("j"));
    state.apply(&propose(dispatch_to("j", "p1")));
    let refused = rejection(&mut state, dispatch_to("j", "p1"));
    assert!(matches!(refused, Rejection::NotDispatchable { .. }));
    assert_eq!(state.dispatched_job_of(&id("p2")), None);
    assert_eq!(next_for(&state, "p1"), None, "sent already");
    state.apply(&propose(farm_job("k", Some("red"), None)));
    let refused = rejection(&mut state, dispatch_to("k", "p1"));
    assert!(
        matches!(&refused, Rejection::NotDispatchable { why, .. } if why.contains("'j'")),
        "one job at a time on a printer: {refused:?}"
    );
}

#[test]
fn a_spool_is_on_one_printer_at_a_time() {
    let mut state = queue_farm();
    state.apply(&propose(load("p1", Some("red"))));
    let refused = rejection(&mut state, load("p2", Some("red")));
    assert_eq!(
        refused,
        Rejection::SpoolLoadedElsewhere {
            filament_id: id("red"),
            printer_id: id("p1"),
        }
    );
    assert_eq!(
        rejection(&mut state, load("p2", Some("ghost"))),
        Rejection::UnknownFilament(id("ghost"))
    );
    state.apply(&propose(load("p1", None)));
    state.apply(&propose(load("p2", Some("red"))));
    let p2 = state.printer(&id("p2")).expect("p2");
    assert_eq!(p2.loaded_filament_id, Some(id("red")));
}

#[test]
fn a_printer_waits_for_its_bed_to_be_cleared_unless_it_clears_itself() {
    let mut state = queue_farm();
    state.apply(&propose(load("p1", Some("red"))));
    state.apply(&propose(farm_job("a", Some("red"), None)));
    state.apply(&propose(farm_job("b", Some("red"), None)));
    state.apply(&propose(dispatch_to("a", "p1")));
    state.take_events();
    state.apply(&propose(finish("a")));
    let kinds: Vec<EventKind> = state.take_events().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::PrinterUpdated), "{kinds:?}");
    let wait = state
        .printer(&id("p1"))
        .and_then(|p| p.awaiting_clear.clone());
    assert_eq!(wait.map(|w| w.job_id), Some(id("a")));
    assert_eq!(next_for(&state, "p1"), None, "the bed holds a's print");
    assert!(matches!(
        rejection(&mut state, dispatch_to("b", "p1")),
        Rejection::NotDispatchable { .. }
    ));
    state.apply(&propose(Command::ClearBed {
        printer_id: id("p1"),
    }));
    assert_eq!(next_for(&state, "p1").as_deref(), Some("b"));
    // A self-clearing printer goes on at once; a job canceled before it started also
    // leaves the bed to be looked at.
    let mut self_clearing = connect("p1");
    if let Command::ConnectPrinter { connection, .. } = &mut self_clearing {
        connection.self_clearing = true;
    }
    state.apply(&propose(self_clearing));
    state.apply(&propose(dispatch_to("b", "p1")));
    state.apply(&propose(finish("b")));
    let p1 = state.printer(&id("p1")).expect("p1");
    assert_eq!(p1.awaiting_clear, None);
    state.apply(&propose(load("p2", Some("blue"))));
    state.apply(&propose(farm_job("c", Some("blue"), None)));
    state.apply(&propose(dispatch_to("c", "p2")));
    state.apply(&propose(set("c", JobStatus::Canceled)));
    let p2 = state.printer(&id("p2")).expect("p2");
    assert_eq!(
        p2.awaiting_clear.as_ref().map(|w| &w.job_id),
        Some(&id("c"))
    );
    assert_eq!(
        rejection(
            &mut state,
            Command::ClearBed {
                printer_id: id("ghost")
            }
        ),
        Rejection::UnknownPrinter(id("ghost"))
    );
}

#[test]
fn a_job_with_no_printer_yet_cannot_be_run_by_hand() {
    let mut state = queue_farm();
    state.apply(&propose(farm_job("j", Some("red"), None)));
    assert_eq!(
        rejection(&mut state, set("j", JobStatus::Running)),
        Rejection::Unassigned { job_id: id("j") }
    );
    state.apply(&propose(set("j", JobStatus::Canceled)));
    assert_eq!(state.reserved(&id("red")), 0);
}

#[test]
fn the_queue_goes_in_its_order_and_a_move_changes_it() {
    let mut state = queue_farm();
    state.apply(&propose(load("p1", Some("red"))));
    for j in ["a", "b", "c", "d"] {
        state.apply(&propose(farm_job(j, Some("red"), None)));
    }
    assert_eq!(queue_ids(&state), ["a", "b", "c", "d"]);
    assert_eq!(next_for(&state, "p1").as_deref(), Some("a"));
    state.apply(&propose(place("d", QueuePlace::First)));
    assert_eq!(queue_ids(&state), ["d", "a", "b", "c"]);
    assert_eq!(next_for(&state, "p1").as_deref(), Some("d"));
    state.apply(&propose(place("d", QueuePlace::After(id("b")))));
    assert_eq!(queue_ids(&state), ["a", "b", "d", "c"]);
    state.apply(&propose(place("a", QueuePlace::Before(id("c")))));
    assert_eq!(queue_ids(&state), ["b", "d", "a", "c"]);
    state.apply(&propose(place("b", QueuePlace::Last)));
    assert_eq!(queue_ids(&state), ["d", "a", "c", "b"]);
    // Many moves into one gap: the queue is numbered afresh, the order is kept.
    for _ in 0..40 {
        state.apply(&propose(place("b", QueuePlace::Before(id("a")))));
        state.apply(&propose(place("c", QueuePlace::Before(id("b")))));
        state.apply(&propose(place("a", QueuePlace::After(id("d")))));
    }
    let order = queue_ids(&state);
    assert_eq!(order.len(), 4);
    let restored = FarmState::from_snapshot(state.to_snapshot());
    assert_eq!(queue_ids(&restored), order, "the order survives a snapshot");
    // A job sent to a printer, or ended, has left the waiting queue.
    let first = order[0].clone();
    state.apply(&propose(dispatch_to(&first, "p1")));
    assert!(matches!(
        rejection(&mut state, place(&first, QueuePlace::Last)),
        Rejection::NotWaiting {
            dispatched: true,
            ..
        }
    ));
    assert_eq!(
        rejection(&mut state, place("ghost", QueuePlace::First)),
        Rejection::UnknownJob(id("ghost"))
    );
    assert_eq!(
        rejection(
            &mut state,
            place(&order[1], QueuePlace::Before(id("ghost")))
        ),
        Rejection::UnknownJob(id("ghost"))
    );
}

#[test]
fn copies_are_queued_together_or_not_at_all() {
    let mut state = queue_farm();
    let copy = |raw: &str| match farm_job(raw, Some("red"), None) {
        Command::CreatePrintJob(job) => job,
        _ => unreachable!(),
    };
    // 13 copies of 8 g need 104 g of the spool's 100.
    let many: Vec<PrintJob> = (0..13).map(|i| copy(&format!("c{i}"))).collect();
    assert!(matches!(
        rejection(&mut state, Command::CreatePrintJobs(many)),
        Rejection::InsufficientFilament { available: 4, .. }
    ));
    assert_eq!(state.counts().2, 0, "none was queued");
    let twice = vec![copy("x"), copy("x")];
    assert!(matches!(
        rejection(&mut state, Command::CreatePrintJobs(twice)),
        Rejection::DuplicateId { .. }
    ));
    let three: Vec<PrintJob> = (0..3).map(|i| copy(&format!("c{i}"))).collect();
    let Outcome::Created(Entity::PrintJobs(jobs)) =
        state.apply(&propose(Command::CreatePrintJobs(three)))
    else {
        panic!("three copies are queued");
    };
    assert_eq!(jobs.len(), 3);
    assert_eq!(queue_ids(&state), ["c0", "c1", "c2"]);
    assert_eq!(state.reserved(&id("red")), 24);
}
