use super::*;
use crate::domain::Quantity;

fn printer(body: &str) -> Result<NewPrinter, RequestError> {
    NewPrinter::from_json(body.as_bytes())
}
fn filament(body: &str) -> Result<NewFilament, RequestError> {
    NewFilament::from_json(body.as_bytes())
}
fn job(body: &str) -> Result<NewPrintJob, RequestError> {
    NewPrintJob::from_json(body.as_bytes())
}

#[test]
fn a_valid_printer_request_is_parsed_and_trimmed() {
    let parsed = printer(r#"{"company":" Prusa ","model":"i3 MK3S+"}"#).expect("valid");
    assert_eq!(parsed.id, None);
    assert_eq!(parsed.company.as_str(), "Prusa");
    let stored = parsed.into_printer(Id::parse("gen-1").expect("id"));
    assert_eq!(stored.id.as_str(), "gen-1");
}

#[test]
fn numeric_ids_are_taken_as_their_decimal_string() {
    let parsed = printer(r#"{"id":42,"company":"Creality","model":"Ender 3"}"#).expect("valid");
    assert_eq!(parsed.id.map(|id| id.to_string()), Some("42".to_owned()));
    let parsed =
        job(r#"{"printer_id":7,"filament_id":"8","filepath":"a.gcode","print_weight_in_grams":5}"#)
            .expect("valid");
    assert_eq!(parsed.printer_id.as_ref().map(Id::as_str), Some("7"));
}

#[test]
fn malformed_bodies_are_400_class_and_name_the_field() {
    let cases = [
        ("", None),
        ("{", None),
        ("[]", None),
        ("\"x\"", None),
        (r#"{"company":1,"model":"m"}"#, Some("company")),
        (r#"{"company":"c","model":["m"]}"#, Some("model")),
        (r#"{"id":1.5,"company":"c","model":"m"}"#, Some("id")),
        (r#"{"id":true,"company":"c","model":"m"}"#, Some("id")),
        (
            r#"{"company":"c","model":"m","colour":"x"}"#,
            Some("colour"),
        ),
    ];
    for (body, field) in cases {
        let err = printer(body).expect_err(body);
        assert!(err.is_malformed(), "{body}: {err:?}");
        assert_eq!(err.field(), field, "{body}");
    }
}

#[test]
fn broken_printer_rules_are_422_class_and_name_the_field() {
    let cases = [
        (r#"{"model":"m"}"#, "company"),
        (r#"{"company":null,"model":"m"}"#, "company"),
        (r#"{"company":"  ","model":"m"}"#, "company"),
        (r#"{"company":"c","model":""}"#, "model"),
        (r#"{"id":"a/b","company":"c","model":"m"}"#, "id"),
        (r#"{"id":"","company":"c","model":"m"}"#, "id"),
    ];
    for (body, field) in cases {
        let err = printer(body).expect_err(body);
        assert!(!err.is_malformed(), "{body}: {err:?}");
        assert_eq!(err.field(), Some(field), "{body}");
    }
}

#[test]
fn whole_floats_are_weights() {
    let parsed =
        filament(r#"{"type":"PLA","color":"red","total_weight_in_grams":2.0}"#).expect("2.0");
    assert_eq!(parsed.total_weight_in_grams, 2);
}

#[test]
fn whole_floats_are_integer_ids_and_other_numbers_are_not() {
    for (raw, id) in [
        ("-389814.0", "-389814"),
        ("6968992899.0", "6968992899"),
        ("1e3", "1000"),
    ] {
        let body = format!(r#"{{"id":{raw},"company":"c","model":"m"}}"#);
        let parsed = printer(&body).expect(raw);
        assert_eq!(parsed.id.as_ref().map(Id::as_str), Some(id), "{raw}");
    }
    // Past 2^53 an `f64` no longer says which integer the text was: one below `i64::MIN`
    // parses to `i64::MIN`, 2^53 + 1 to 2^53.
    for raw in [
        "1.5",
        "1e30",
        "-1e30",
        "-9223372036854775809",
        "18446744073709551616",
        "9007199254740993.0",
        "-9007199254740993.0",
    ] {
        let body = format!(r#"{{"id":{raw},"company":"c","model":"m"}}"#);
        let err = printer(&body).expect_err(raw);
        assert!(err.is_malformed(), "{raw}: {err:?}");
    }
}

#[test]
fn filament_remaining_defaults_to_total_and_type_is_case_insensitive() {
    let parsed =
        filament(r#"{"type":"petg","color":"red","total_weight_in_grams":1000}"#).expect("valid");
    let stored = parsed.into_filament(Id::parse("f").expect("id"));
    assert_eq!(stored.kind, FilamentType::Petg);
    assert_eq!(stored.remaining_weight_in_grams, 1000);
    let parsed = filament(
        r#"{"type":"PLA","color":"red","total_weight_in_grams":1000,"remaining_weight_in_grams":0}"#,
    )
    .expect("zero remaining is allowed");
    assert_eq!(parsed.remaining_weight_in_grams, Some(0));
}

#[test]
fn bad_filaments_are_refused_with_the_right_class_and_field() {
    let base = |extra: &str| {
        format!(r#"{{"type":"PLA","color":"red","total_weight_in_grams":1000{extra}}}"#)
    };
    let rules = [
        (
            r#"{"type":"nylon","color":"red","total_weight_in_grams":1}"#.to_owned(),
            "type",
        ),
        (
            r#"{"type":"PLA","color":"","total_weight_in_grams":1}"#.to_owned(),
            "color",
        ),
        (
            r#"{"type":"PLA","color":"red","total_weight_in_grams":0}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            r#"{"type":"PLA","color":"red","total_weight_in_grams":-5}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            r#"{"type":"PLA","color":"red"}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            r#"{"type":"PLA","color":"red","total_weight_in_grams":1000000000001}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            base(r#","remaining_weight_in_grams":1001"#),
            "remaining_weight_in_grams",
        ),
        (
            base(r#","remaining_weight_in_grams":-1"#),
            "remaining_weight_in_grams",
        ),
        // Whole numbers written as floats are integers (JSON Schema): judged as such.
        (
            r#"{"type":"PLA","color":"red","total_weight_in_grams":1e30}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            base(r#","remaining_weight_in_grams":-3.0"#),
            "remaining_weight_in_grams",
        ),
    ];
    for (body, field) in rules {
        let err = filament(&body).expect_err(&body);
        assert!(!err.is_malformed(), "{body}: {err:?}");
        assert_eq!(err.field(), Some(field), "{body}");
    }
    let malformed = [
        (
            base(r#","remaining_weight_in_grams":"10""#),
            "remaining_weight_in_grams",
        ),
        (
            r#"{"type":"PLA","color":"red","total_weight_in_grams":10.5}"#.to_owned(),
            "total_weight_in_grams",
        ),
        (
            r#"{"type":1,"color":"red","total_weight_in_grams":10}"#.to_owned(),
            "type",
        ),
    ];
    for (body, field) in malformed {
        let err = filament(&body).expect_err(&body);
        assert!(err.is_malformed(), "{body}: {err:?}");
        assert_eq!(err.field(), Some(field), "{body}");
    }
}

#[test]
fn a_job_may_only_be_created_queued() {
    let body = |status: &str| {
        format!(
            r#"{{"printer_id":"p","filament_id":"f","filepath":"x.gcode","print_weight_in_grams":10{status}}}"#
        )
    };
    for ok in [
        "",
        r#","status":"Queued""#,
        r#","status":"queued""#,
        r#","status":null"#,
    ] {
        assert!(job(&body(ok)).is_ok(), "{ok}");
    }
    for bad in [
        r#","status":"Running""#,
        r#","status":"done""#,
        r#","status":"later""#,
    ] {
        let err = job(&body(bad)).expect_err(bad);
        assert_eq!(err.field(), Some("status"), "{bad}");
        assert!(!err.is_malformed());
    }
    let err = job(&body(r#","status":3"#)).expect_err("number status");
    assert!(err.is_malformed());
}

#[test]
fn bad_jobs_name_the_field() {
    let cases = [
        // No printer: the farm queue picks one, which needs a stored file to send.
        (
            r#"{"filament_id":"f","filepath":"x","print_weight_in_grams":1}"#,
            "file_id",
        ),
        (
            r#"{"printer_id":"p","material":{"type":"PLA","color":"red"},"filepath":"x","print_weight_in_grams":1}"#,
            "file_id",
        ),
        (
            r#"{"printer_id":"p","filament_id":"f","material":{"type":"PLA","color":"red"},"file_id":"g"}"#,
            "material",
        ),
        (
            r#"{"material":{"type":"wood","color":"red"},"file_id":"g"}"#,
            "material",
        ),
        (
            r#"{"material":{"type":"PLA","color":" "},"file_id":"g"}"#,
            "material",
        ),
        (r#"{"material":{"type":"PLA"},"file_id":"g"}"#, "material"),
        (r#"{"material":"PLA","file_id":"g"}"#, "material"),
        (
            r#"{"material":{"type":"PLA","color":"r","x":1},"file_id":"g"}"#,
            "x",
        ),
        (
            r#"{"printer_id":"p","filepath":"x","print_weight_in_grams":1}"#,
            "filament_id",
        ),
        (
            r#"{"printer_id":"p","filament_id":"f","filepath":" ","print_weight_in_grams":1}"#,
            "filepath",
        ),
        (
            r#"{"printer_id":"p","filament_id":"f","filepath":"x","print_weight_in_grams":0}"#,
            "print_weight_in_grams",
        ),
        (
            r#"{"printer_id":"p","filament_id":"f","filepath":"x"}"#,
            "print_weight_in_grams",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(job(body).expect_err(body).field(), Some(field), "{body}");
    }
}

#[test]
fn a_job_for_the_farm_queue_names_a_file_and_a_spool_or_a_material() {
    let parsed = job(r#"{"material":{"type":"pla","color":" Red "},"file_id":"g"}"#)
        .expect("a material job");
    assert_eq!(parsed.printer_id, None);
    let file = GcodeFile {
        id: Id::parse("g").expect("id"),
        name: Text::parse("cube.gcode").expect("text"),
        size: 10,
        sha256: "00".repeat(32),
        filament_grams: Quantity::new(4.2).ok(),
        filament_mm: None,
        print_seconds: None,
        slicer: None,
        uploaded_at: None,
    };
    let stored = parsed
        .into_job(Id::parse("j").expect("id"), Some(&file))
        .expect("a job");
    assert_eq!(stored.printer_id, None);
    assert_eq!(stored.filament_id, None);
    let material = stored.material.expect("a material");
    assert_eq!(
        (material.kind, material.color.as_str()),
        (crate::FilamentType::Pla, "Red")
    );
    assert_eq!(stored.print_weight_in_grams, 5, "rounded up from 4.2");
    let spool_only = job(r#"{"filament_id":"f","file_id":"g"}"#).expect("a spool job");
    assert_eq!(
        spool_only.spool,
        SpoolChoice::Spool {
            filament_id: Id::parse("f").expect("id")
        }
    );
}

#[test]
fn copies_are_one_to_a_hundred_and_take_no_id() {
    let copies = |raw: &str| NewPrintJob::copies_from_json(raw.as_bytes());
    let (job, n) = copies(r#"{"filament_id":"f","file_id":"g","copies":3}"#).expect("valid");
    assert_eq!((job.id, n), (None, 3));
    for (bad, field) in [
        (r#"{"filament_id":"f","file_id":"g","copies":0}"#, "copies"),
        (
            r#"{"filament_id":"f","file_id":"g","copies":101}"#,
            "copies",
        ),
        (r#"{"filament_id":"f","file_id":"g","copies":-1}"#, "copies"),
        (
            r#"{"filament_id":"f","file_id":"g","copies":"2"}"#,
            "copies",
        ),
        (r#"{"filament_id":"f","file_id":"g"}"#, "copies"),
        (
            r#"{"id":"j","filament_id":"f","file_id":"g","copies":2}"#,
            "id",
        ),
    ] {
        assert_eq!(copies(bad).expect_err(bad).field(), Some(field), "{bad}");
    }
}

#[test]
fn a_queue_place_is_exactly_one_of_before_after_and_to() {
    use crate::domain::QueuePlace;
    let place = |raw: &str| parse_queue_place(raw.as_bytes());
    let j = Id::parse("j").expect("id");
    assert_eq!(
        place(r#"{"before":"j"}"#),
        Ok(QueuePlace::Before(j.clone()))
    );
    assert_eq!(place(r#"{"after":"j"}"#), Ok(QueuePlace::After(j)));
    assert_eq!(place(r#"{"to":"First"}"#), Ok(QueuePlace::First));
    assert_eq!(place(r#"{"to":"last"}"#), Ok(QueuePlace::Last));
    for bad in [
        "{}",
        r#"{"to":"middle"}"#,
        r#"{"before":"j","to":"first"}"#,
        r#"{"before":"a b"}"#,
        r#"{"behind":"j"}"#,
        "[]",
    ] {
        assert!(place(bad).is_err(), "{bad}");
    }
    // The constructors the clients use say what they mean.
    for (body, want) in [
        (QueuePlaceBody::before("j"), r#"{"before":"j"}"#),
        (QueuePlaceBody::after("j"), r#"{"after":"j"}"#),
        (QueuePlaceBody::to("first"), r#"{"to":"first"}"#),
    ] {
        assert_eq!(serde_json::to_string(&body).expect("json"), want);
    }
}

#[test]
fn fingerprints_ignore_formatting_but_not_content() {
    let a = printer(r#"{"company":"c","model":"m"}"#).expect("valid");
    let b = printer("{ \"model\" : \"m\",\n \"company\":\"c\" }").expect("valid");
    let c = printer(r#"{"company":"c","model":"other"}"#).expect("valid");
    let path = "/api/v1/printers";
    assert_eq!(fingerprint("POST", path, &a), fingerprint("POST", path, &b));
    assert_ne!(fingerprint("POST", path, &a), fingerprint("POST", path, &c));
    assert_ne!(
        fingerprint("POST", path, &a),
        fingerprint("POST", "/api/v1/x", &a)
    );
}

#[test]
fn status_parameters_accept_any_case_and_the_british_spelling() {
    assert_eq!(parse_status("RUNNING"), Ok(JobStatus::Running));
    assert_eq!(parse_status("cancelled"), Ok(JobStatus::Canceled));
    let err = parse_status("paused").expect_err("unknown status");
    assert_eq!(err.field(), Some("status"));
    assert!(!err.is_malformed());
}

#[test]
fn roles_travel_as_the_names_clients_compare_with() {
    let roles = [
        (Role::Leader, "Leader"),
        (Role::Follower, "Follower"),
        (Role::Candidate, "Candidate"),
        (Role::Learner, "Learner"),
        (Role::Shutdown, "Shutdown"),
    ];
    for (role, name) in roles {
        assert_eq!(serde_json::to_value(role).expect("serialise"), name);
        assert_eq!(serde_json::from_value::<Role>(name.into()).ok(), Some(role));
        assert_eq!((role.as_str(), role.to_string()), (name, name.to_owned()));
    }
}

#[test]
fn the_problem_body_uses_rfc9457_names() {
    let problem = Problem {
        kind: format!("{PROBLEM_TYPE_BASE}validation"),
        title: "Validation failed".into(),
        status: 422,
        detail: "'color' must not be empty".into(),
        field: Some("color".into()),
        leader_id: None,
        leader_url: None,
        retry_after_ms: None,
    };
    let json = serde_json::to_value(&problem).expect("serialise");
    assert_eq!(json["type"], "https://raft3d.dev/problems/validation");
    assert_eq!(json["field"], "color");
    assert!(json.get("leader_id").is_none());
}

#[test]
fn peer_addresses_are_host_and_port_and_nothing_else() {
    for good in [
        "127.0.0.1:9081",
        "node-2.farm.local:9082",
        "[::1]:9083",
        " host:1 ",
    ] {
        assert!(parse_address(good).is_ok(), "{good} should be accepted");
    }
    for bad in [
        "",
        "host",
        "host:",
        "host:0",
        "host:70000",
        "host:+80",
        ":9081",
        "a b:9081",
        "user@host:9081",
        "host/path:9081",
        "[::1:9081",
        "[zz]:9081",
        "evil\n:9081",
    ] {
        assert_eq!(parse_address(bad), Err(FieldProblem::Address), "{bad:?}");
    }
}

#[test]
fn client_urls_are_scheme_host_and_port_only() {
    assert_eq!(
        parse_client_url("http://farm1.shop:8081/"),
        Ok("http://farm1.shop:8081".to_owned())
    );
    assert_eq!(
        parse_client_url("https://[::1]:8443"),
        Ok("https://[::1]:8443".to_owned())
    );
    for bad in [
        "farm1:8081",
        "ftp://farm1:8081",
        "http://farm1",
        "http://farm1:8081/path",
        "http://user@farm1:8081",
        "http://evil.example:80\r\nX: y",
        "javascript:alert(1)",
    ] {
        assert_eq!(parse_client_url(bad), Err(FieldProblem::ClientUrl), "{bad}");
    }
}
