//! Every rule of SPEC §3 accepts its good values and rejects its bad ones
//! with the right code, on the right line.

use crate::helpers::{lines_with, profile, spawn_app};

struct Case {
    header: &'static str,
    target: &'static str,
    /// Extra column appended to every row (e.g. a postal code for towns).
    extra: Option<(&'static str, &'static str, &'static str)>,
    good: &'static [&'static str],
    bad: &'static [&'static str],
    code: &'static str,
}

const CASES: &[Case] = &[
    Case {
        header: "Langue",
        target: "language",
        extra: None,
        good: &["FR", "en", "de"],
        bad: &["IT", "français"],
        code: "language.unknown",
    },
    Case {
        header: "Civilité",
        target: "civility",
        extra: None,
        good: &["MR", "mrs", "MISS", "MR_AND_MRS", "UNDEFINED"],
        bad: &["DR", "Monsieur"],
        code: "civility.unknown",
    },
    Case {
        header: "Prénom",
        target: "first_name",
        extra: None,
        good: &["Élodie", "D'Arcy", "Ana-María"],
        bad: &["Jean3", "R2D2"],
        code: "name.digits",
    },
    Case {
        header: "Nom",
        target: "last_name",
        extra: None,
        good: &["Côté", "O'Brien", "Da Silva"],
        bad: &["Smith 2"],
        code: "name.digits",
    },
    Case {
        header: "Naissance",
        target: "birthdate",
        extra: None,
        good: &["21.03.1985", "29.02.2024", "22.11.2026", ""],
        bad: &["1985-03-12", "31.02.1990", "1.2.1985", "12/03/1985"],
        code: "birthdate.format",
    },
    Case {
        header: "Naissance",
        target: "birthdate",
        extra: None,
        good: &["01.01.1930"],
        bad: &["23.11.2026", "01.01.2100"],
        code: "birthdate.future",
    },
    Case {
        header: "Ville",
        target: "town",
        extra: Some(("CP", "postal_code", "1000")),
        good: &["Saint-Étienne", "L'Île-Bizard", "St. Gallen", "Zürich"],
        bad: &["Paris 11", "Lyon!", "Genève_1"],
        code: "town.format",
    },
    Case {
        header: "Pays",
        target: "country",
        extra: Some(("CP", "postal_code", "1000")),
        good: &["FR", "ch", "Brésil", "BRÉSIL", "Switzerland", "Suisse", "Allemagne", "Germany"],
        bad: &["BRESIL", "Atlantis", "XX"],
        code: "country.unknown",
    },
    Case {
        header: "Téléphone",
        target: "phone",
        extra: None,
        good: &["+41 79 555 01 00", "(514) 555-0000", "01.23.45.67.89", ""],
        bad: &["555-CALL", "+", "12#34"],
        code: "phone.format",
    },
    Case {
        header: "Mobile",
        target: "mobile",
        extra: None,
        good: &["+33 6 12 34 56 78"],
        bad: &["06 12 34 56 78 ext"],
        code: "phone.format",
    },
    Case {
        header: "Segment",
        target: "criteria.segment",
        extra: None,
        good: &["SEG_GOLD", "SEG_SILVER", ""],
        bad: &["SEG_PLATINUM", "seg_gold"],
        code: "criteria.unknown",
    },
    Case {
        header: "Infolettre",
        target: "consent.newsletter",
        extra: None,
        good: &["TRUE", "true", "T", "t", "FALSE", "false", "F", "f", ""],
        bad: &["yes", "1", "Vrai"],
        code: "consent.value",
    },
];

#[tokio::test]
async fn every_rule_accepts_good_values_and_rejects_bad_ones_with_its_code() {
    let app = spawn_app().await;
    for (n, case) in CASES.iter().enumerate() {
        let mut yaml = format!("columns:\n  Courriel: email\n  {}: {}\n", case.header, case.target);
        let mut header = format!("Courriel;{}", case.header);
        if let Some((h, t, _)) = case.extra {
            yaml.push_str(&format!("  {h}: {t}\n"));
            header.push_str(&format!(";{h}"));
        }
        yaml.push_str("criteria:\n  segment: [SEG_GOLD, SEG_SILVER, SEG_BRONZE]\n");
        let mut body = header + "\n";
        for (i, v) in case.good.iter().chain(case.bad.iter()).enumerate() {
            body.push_str(&format!("c{n}.r{i}@example.com;{v}"));
            if let Some((_, _, x)) = case.extra {
                body.push_str(&format!(";{x}"));
            }
            body.push('\n');
        }
        let path = app.write(&format!("rule{n}.csv"), body);
        let report = app.import(&path, &profile(&yaml)).await;

        let expected_lines: Vec<i64> = (0..case.bad.len()).map(|i| (2 + case.good.len() + i) as i64).collect();
        assert_eq!(
            lines_with(&report, case.code),
            expected_lines,
            "{} on {}: {:?}",
            case.code,
            case.target,
            report.messages
        );
        assert_eq!(report.counts.rejected, case.bad.len() as i64, "{}: {:?}", case.target, report.messages);
        assert_eq!(report.counts.inserted, case.good.len() as i64, "{}", case.target);
        let errors: Vec<&str> =
            report.messages.iter().filter(|m| m.severity == "error").map(|m| m.code.as_str()).collect();
        assert!(errors.iter().all(|c| *c == case.code), "{}: unexpected codes {errors:?}", case.target);
    }
}

#[tokio::test]
async fn malformed_email_addresses_are_rejected_and_good_ones_stored_lower_case() {
    let app = spawn_app().await;
    let path = app.write(
        "emails.csv",
        "email\n Jean.Dupont@Example.COM \nchloe+news@sub.mail.ch\njean.dupontexample.com\na b@example.com\nx@y\n\"\"\n",
    );
    let report = app.import(&path, &Default::default()).await;
    assert_eq!(lines_with(&report, "email.format"), vec![4, 5, 6, 7]);
    assert_eq!(report.counts.inserted, 2);
    assert!(app.contact("jean.dupont@example.com").await.is_some());
}

#[tokio::test]
async fn a_partial_address_needs_a_postal_code_or_a_state() {
    let app = spawn_app().await;
    let path = app.write(
        "addr.csv",
        "email;address;postal_code;state;town;country\n\
         a@x.ch;12 rue X;75011;;Paris;FR\n\
         b@x.ch;;;;;\n\
         c@x.ch;3 rue du Rhône;;GE;Genève;CH\n\
         d@x.ch;12 rue X;;;Paris;FR\n\
         e@x.ch;;;;Paris;\n\
         f@x.ch;;;;;FR\n",
    );
    let report = app.import(&path, &Default::default()).await;
    assert_eq!(lines_with(&report, "address.partial"), vec![5, 6, 7]);
    assert_eq!(report.counts.inserted, 3);
    assert_eq!(app.contact("c@x.ch").await.unwrap()["country"], "CH");
}

#[tokio::test]
async fn one_message_per_broken_rule_on_a_row_that_breaks_several() {
    let app = spawn_app().await;
    let path = app.write("multi.csv", "email;civility;first_name\nbad-address;DR;Jean3\n");
    let report = app.import(&path, &Default::default()).await;
    assert_eq!(report.counts.rejected, 1);
    let mut codes: Vec<&str> = report.messages.iter().map(|m| m.code.as_str()).collect();
    codes.sort();
    assert_eq!(codes, vec!["civility.unknown", "email.format", "name.digits"]);
}

#[tokio::test]
async fn empty_cells_are_corrected_with_warnings_when_a_contact_is_created() {
    let app = spawn_app().await;
    let path = app.write(
        "empty.csv",
        "email;language;display;civility;first_name;last_name\nA@x.ch;;;;;\nb@x.ch;EN;Bob;MR;Bob;Smith\n",
    );
    let report = app.import(&path, &Default::default()).await;
    assert_eq!(report.counts.inserted, 2);
    assert_eq!(report.counts.warnings, 1);
    assert_eq!(report.counts.rejected, 0);
    assert_eq!(report.status.as_str(), "succeeded_with_warnings");
    let a = app.contact("a@x.ch").await.unwrap();
    assert_eq!((a["language"].as_str(), a["civility"].as_str()), (Some("FR"), Some("UNDEFINED")));
    assert_eq!((a["first_name"].as_str(), a["last_name"].as_str()), (Some("-"), Some("-")));
    for code in ["display.empty", "civility.empty", "language.empty"] {
        assert_eq!(report.by_code.get(code), Some(&1), "{code}");
    }
    assert_eq!(report.by_code.get("name.empty"), Some(&2));
    assert!(report.messages.iter().all(|m| m.severity == "warning" && m.line == 2));
}

#[tokio::test]
async fn in_a_file_of_known_and_new_contacts_only_written_corrections_are_warnings() {
    let app = spawn_app().await;
    let header = "email;language;display;civility;first_name;last_name\n";
    app.import(&app.write("first.csv", format!("{header}known@x.ch;EN;Kim;MRS;Kim;Lee\n")), &Default::default()).await;
    // Both lines have an empty civility: the new contact gets UNDEFINED; the
    // known one keeps MRS unless empty cells clear it.
    let second = format!("{header}known@x.ch;EN;Kim;;Kim;Lee\nnew@x.ch;EN;Ned;;Ned;Noe\n");
    let keep = app.import(&app.write("keep.csv", &second), &Default::default()).await;
    assert_eq!((keep.counts.inserted, keep.counts.updated, keep.counts.warnings), (1, 0, 1), "{:?}", keep.messages);
    let lines: Vec<(i64, &str)> = keep.messages.iter().map(|m| (m.line, m.code.as_str())).collect();
    assert_eq!(lines, vec![(3, "civility.empty")]);
    assert_eq!(app.contact("known@x.ch").await.unwrap()["civility"], "MRS");

    let third = format!("{header}known@x.ch;EN;Kim;;Kim;Lee\nnewer@x.ch;EN;Nat;;Nat;Noe\n");
    let clear = app.import(&app.write("clear.csv", &third), &profile("empty_cells: clear\n")).await;
    assert_eq!((clear.counts.inserted, clear.counts.updated, clear.counts.warnings), (1, 1, 2), "{:?}", clear.messages);
    assert_eq!(clear.by_code.get("civility.empty"), Some(&2));
    assert_eq!(app.contact("known@x.ch").await.unwrap()["civility"], "UNDEFINED");
}

#[tokio::test]
async fn warnings_carry_their_column_and_value_and_the_default_language() {
    let app = spawn_app().await;
    let path = app.write("empty.csv", "email;Langue;display\na@x.ch;;Ann\nb@x.ch;EN;\n");
    let mapping = crate::helpers::profile("columns:\n  email: email\n  Langue: language\n  display: display\n");
    let report = app.import(&path, &mapping).await;
    let shown: Vec<(i64, &str, Option<&str>, Option<&str>)> =
        report.messages.iter().map(|m| (m.line, m.code.as_str(), m.column.as_deref(), m.value.as_deref())).collect();
    assert_eq!(
        shown,
        vec![(2, "language.empty", Some("Langue"), Some("FR")), (3, "display.empty", Some("display"), Some(""))]
    );
    assert!(report.messages[0].message.contains("FR"), "{}", report.messages[0].message);
}

#[tokio::test]
async fn beyond_the_message_limit_the_first_messages_by_line_are_kept_and_the_counts_stay_complete() {
    let app = spawn_app().await;
    // Errors (bad civility) and warnings (empty display) interleaved by line.
    let mut csv = String::from("email;display;civility\n");
    for i in 0..10 {
        if i % 2 == 0 {
            csv.push_str(&format!("c{i}@x.ch;;MR\n"));
        } else {
            csv.push_str(&format!("c{i}@x.ch;C {i};DR\n"));
        }
    }
    let path = app.write("many.csv", csv);
    let opts = crate::helpers::Opts { max_messages: Some(4), ..Default::default() };
    let report = app.import_with(&path, &Default::default(), opts).await;
    assert_eq!(report.by_code.get("display.empty"), Some(&5));
    assert_eq!(report.by_code.get("civility.unknown"), Some(&5));
    assert!(report.messages_truncated);
    let kept: Vec<(i64, &str)> = report.messages.iter().map(|m| (m.line, m.code.as_str())).collect();
    assert_eq!(
        kept,
        vec![(2, "display.empty"), (3, "civility.unknown"), (4, "display.empty"), (5, "civility.unknown")]
    );
}

#[tokio::test]
async fn messages_are_written_in_the_tenants_language() {
    let app = crate::helpers::spawn_app_with_language(dropfeed::domain::ReportLanguage::En).await;
    let path = app.write("lang.csv", "email;civility\na@x.ch;DR\n");
    let report = app.import(&path, &Default::default()).await;
    assert!(report.messages[0].message.starts_with("Unknown title"), "{}", report.messages[0].message);
    let fr = spawn_app().await;
    let path = fr.write("lang.csv", "email;civility\na@x.ch;DR\n");
    let report = fr.import(&path, &Default::default()).await;
    assert!(report.messages[0].message.starts_with("Civilité inconnue"), "{}", report.messages[0].message);
}
