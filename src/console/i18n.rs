//! The console's words in French and English: one struct of texts per
//! language, so a template naming a missing text does not compile.

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE};

use crate::domain::ReportLanguage;

/// The cookie that keeps a person's choice of language.
pub const LANG_COOKIE: &str = "dropfeed_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().get(..2) {
            Some("fr") => Some(Lang::Fr),
            Some("en") => Some(Lang::En),
            _ => None,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    /// The person's choice (cookie), else the tenant's language for a
    /// tenant user, else the browser's first of French or English, else French.
    pub fn of(headers: &HeaderMap, tenant: Option<ReportLanguage>) -> Lang {
        let chosen = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == LANG_COOKIE)
            .and_then(|c| Lang::parse(c.value()));
        if let Some(lang) = chosen {
            return lang;
        }
        if let Some(t) = tenant {
            return if t == ReportLanguage::En { Lang::En } else { Lang::Fr };
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').find_map(|part| Lang::parse(part.split(';').next().unwrap_or_default())))
            .unwrap_or(Lang::Fr)
    }
}

pub struct Texts {
    pub lang: &'static str,
    pub other_lang: &'static str,
    pub other_lang_name: &'static str,
    pub skip_to_content: &'static str,
    pub overview: &'static str,
    pub runs: &'static str,
    pub analyser: &'static str,
    pub audit: &'static str,
    pub log_in: &'static str,
    pub log_out: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub login_failed: &'static str,
    pub login_throttled: &'static str,
    pub signed_in_as: &'static str,
    pub tenant: &'static str,
    pub tenants: &'static str,
    pub feed: &'static str,
    pub feeds: &'static str,
    pub status: &'static str,
    pub file: &'static str,
    pub started: &'static str,
    pub took: &'static str,
    pub profile: &'static str,
    pub last_run: &'static str,
    pub next_run: &'static str,
    pub never: &'static str,
    pub paused: &'static str,
    pub active: &'static str,
    pub needs_attention: &'static str,
    pub all_well: &'static str,
    pub no_feed: &'static str,
    pub rows: &'static str,
    pub inserted: &'static str,
    pub updated: &'static str,
    pub unchanged: &'static str,
    pub skipped_existing: &'static str,
    pub skipped_new: &'static str,
    pub rejected: &'static str,
    pub warnings: &'static str,
    pub filter: &'static str,
    pub any: &'static str,
    pub since: &'static str,
    pub next_page: &'static str,
    pub first_page: &'static str,
    pub no_runs: &'static str,
    pub report: &'static str,
    pub reason: &'static str,
    pub messages_by_rule: &'static str,
    pub lines: &'static str,
    pub line: &'static str,
    pub column: &'static str,
    pub value: &'static str,
    pub message: &'static str,
    pub all_messages: &'static str,
    pub rule: &'static str,
    pub download_rejects: &'static str,
    pub download_file: &'static str,
    pub release: &'static str,
    pub replay: &'static str,
    pub replay_force: &'static str,
    pub confirm: &'static str,
    pub cancel: &'static str,
    pub release_explained: &'static str,
    pub replay_explained: &'static str,
    pub replay_force_explained: &'static str,
    pub refused: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub error: &'static str,
    pub back: &'static str,
    pub rerun_of: &'static str,
    pub rerun_by: &'static str,
    pub messages_truncated: &'static str,
}

pub static FR: Texts = Texts {
    lang: "fr",
    other_lang: "en",
    other_lang_name: "English",
    skip_to_content: "Aller au contenu",
    overview: "Vue d'ensemble",
    runs: "Exécutions",
    analyser: "Analyser",
    audit: "Journal d'audit",
    log_in: "Se connecter",
    log_out: "Se déconnecter",
    email: "Adresse e-mail",
    password: "Mot de passe",
    login_failed: "Adresse e-mail ou mot de passe incorrect.",
    login_throttled: "Trop d'essais manqués : réessayez dans 15 minutes.",
    signed_in_as: "Connecté en tant que",
    tenant: "Client",
    tenants: "Clients",
    feed: "Flux",
    feeds: "Flux",
    status: "État",
    file: "Fichier",
    started: "Début",
    took: "Durée",
    profile: "Profil",
    last_run: "Dernière exécution",
    next_run: "Prochaine exécution",
    never: "jamais",
    paused: "en pause",
    active: "actif",
    needs_attention: "À traiter",
    all_well: "Tout va bien",
    no_feed: "aucun flux",
    rows: "lignes",
    inserted: "créés",
    updated: "mis à jour",
    unchanged: "inchangés",
    skipped_existing: "déjà présents",
    skipped_new: "inconnus",
    rejected: "rejetés",
    warnings: "avertissements",
    filter: "Filtrer",
    any: "tous",
    since: "Depuis le",
    next_page: "Page suivante",
    first_page: "Première page",
    no_runs: "Aucune exécution.",
    report: "Rapport",
    reason: "Motif",
    messages_by_rule: "Messages par règle",
    lines: "ligne(s)",
    line: "Ligne",
    column: "Colonne",
    value: "Valeur",
    message: "Message",
    all_messages: "Tous les messages",
    rule: "Règle",
    download_rejects: "Télécharger les lignes rejetées (CSV)",
    download_file: "Télécharger le fichier archivé",
    release: "Libérer",
    replay: "Rejouer",
    replay_force: "Rejouer quand même",
    confirm: "Confirmer",
    cancel: "Annuler",
    release_explained: "Le fichier retenu sera importé tel qu'il a été déposé, avec la dernière version de son profil, sans les garde-fous qui l'ont retenu. Un fichier n'est libéré qu'une fois.",
    replay_explained: "Le fichier archivé sera importé à nouveau avec la dernière version de son profil. Seule une exécution qui n'a rien écrit peut être rejouée sans forcer.",
    replay_force_explained: "Ce fichier a déjà été appliqué : le rejouer l'appliquera une deuxième fois.",
    refused: "Refusé",
    not_found: "Page introuvable.",
    forbidden: "Votre rôle ne permet pas cette action.",
    error: "Erreur",
    back: "Retour",
    rerun_of: "Réimporte l'exécution",
    rerun_by: "Réimportée par l'exécution",
    messages_truncated: "Les messages ont été tronqués : seuls les comptes par règle sont complets.",
};

pub static EN: Texts = Texts {
    lang: "en",
    other_lang: "fr",
    other_lang_name: "Français",
    skip_to_content: "Skip to content",
    overview: "Overview",
    runs: "Runs",
    analyser: "Analyser",
    audit: "Audit log",
    log_in: "Log in",
    log_out: "Log out",
    email: "E-mail address",
    password: "Password",
    login_failed: "Wrong e-mail or password.",
    login_throttled: "Too many failed logins: try again in 15 minutes.",
    signed_in_as: "Signed in as",
    tenant: "Tenant",
    tenants: "Tenants",
    feed: "Feed",
    feeds: "Feeds",
    status: "Status",
    file: "File",
    started: "Started",
    took: "Took",
    profile: "Profile",
    last_run: "Last run",
    next_run: "Next run",
    never: "never",
    paused: "paused",
    active: "active",
    needs_attention: "Needs attention",
    all_well: "All well",
    no_feed: "no feed",
    rows: "rows",
    inserted: "inserted",
    updated: "updated",
    unchanged: "unchanged",
    skipped_existing: "already there",
    skipped_new: "unknown",
    rejected: "rejected",
    warnings: "warnings",
    filter: "Filter",
    any: "any",
    since: "Since",
    next_page: "Next page",
    first_page: "First page",
    no_runs: "No run.",
    report: "Report",
    reason: "Reason",
    messages_by_rule: "Messages by rule",
    lines: "line(s)",
    line: "Line",
    column: "Column",
    value: "Value",
    message: "Message",
    all_messages: "All messages",
    rule: "Rule",
    download_rejects: "Download the rejected lines (CSV)",
    download_file: "Download the archived file",
    release: "Release",
    replay: "Replay",
    replay_force: "Replay anyway",
    confirm: "Confirm",
    cancel: "Cancel",
    release_explained: "The held file will be imported as it was dropped, with the latest version of its profile, without the guards that held it. A file is released once only.",
    replay_explained: "The archived file will be imported again with the latest version of its profile. Only a run that wrote nothing can be replayed without forcing.",
    replay_force_explained: "This file was applied already: replaying it applies it a second time.",
    refused: "Refused",
    not_found: "Page not found.",
    forbidden: "Your role does not allow this.",
    error: "Error",
    back: "Back",
    rerun_of: "Re-imports run",
    rerun_by: "Re-imported by run",
    messages_truncated: "Messages were truncated: only the counts per rule are complete.",
};
