//! The console's profiles: a tenant's profiles, one profile's versions, and
//! two versions side by side with what changed between them.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use similar::{ChangeTag, TextDiff};

use super::i18n::Texts;
use super::{Viewer, error_page};
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::store::profiles::{self, ProfileStoreError};

fn store_problem(e: ProfileStoreError) -> Problem {
    match e {
        ProfileStoreError::NotFound(name) => Problem::not_found(format!("profile {name}")),
        other => Problem::internal(other),
    }
}

pub struct ProfileRow {
    pub name: String,
    pub version: i32,
    pub created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "profiles.html")]
struct ProfilesPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    tenant: String,
    profiles: Vec<ProfileRow>,
}

pub async fn list(viewer: Viewer, State(state): State<ApiState>, Path(slug): Path<String>) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        let all = profiles::list(&state.pool, tenant.id).await.map_err(store_problem)?;
        Ok(all
            .into_iter()
            .map(|p| ProfileRow {
                name: p.name,
                version: p.version,
                created: super::pages::local(p.created_at, &tenant.timezone),
            })
            .collect())
    }
    .await;
    match result {
        Ok(profiles) => ProfilesPage { t, viewer: Some(viewer), tenant: slug, profiles }.into_response(),
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

/// One line of the side-by-side diff: (left number, left, right number,
/// right, `same`, `removed`, `added` or `changed`).
pub struct DiffLine {
    pub left_no: String,
    pub left: String,
    pub right_no: String,
    pub right: String,
    pub kind: &'static str,
}

/// The two texts side by side, a removed line facing the line added in its place.
fn side_by_side(old: &str, new: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(old, new);
    let mut out: Vec<DiffLine> = Vec::new();
    // Lines removed and added since the last unchanged one: (number, text).
    type Run = Vec<(usize, String)>;
    let (mut removed, mut added): (Run, Run) = (Vec::new(), Vec::new());
    let flush = |out: &mut Vec<DiffLine>, removed: &mut Run, added: &mut Run| {
        let n = removed.len().max(added.len());
        for i in 0..n {
            let l = removed.get(i);
            let r = added.get(i);
            out.push(DiffLine {
                left_no: l.map(|x| x.0.to_string()).unwrap_or_default(),
                left: l.map(|x| x.1.clone()).unwrap_or_default(),
                right_no: r.map(|x| x.0.to_string()).unwrap_or_default(),
                right: r.map(|x| x.1.clone()).unwrap_or_default(),
                kind: match (l, r) {
                    (Some(_), Some(_)) => "changed",
                    (Some(_), None) => "removed",
                    _ => "added",
                },
            });
        }
        removed.clear();
        added.clear();
    };
    for change in diff.iter_all_changes() {
        let text = change.value().trim_end_matches('\n').to_owned();
        match change.tag() {
            ChangeTag::Delete => removed.push((change.old_index().unwrap_or(0) + 1, text)),
            ChangeTag::Insert => added.push((change.new_index().unwrap_or(0) + 1, text)),
            ChangeTag::Equal => {
                flush(&mut out, &mut removed, &mut added);
                out.push(DiffLine {
                    left_no: (change.old_index().unwrap_or(0) + 1).to_string(),
                    left: text.clone(),
                    right_no: (change.new_index().unwrap_or(0) + 1).to_string(),
                    right: text,
                    kind: "same",
                });
            }
        }
    }
    flush(&mut out, &mut removed, &mut added);
    out
}

#[derive(Template, WebTemplate)]
#[template(path = "profile.html")]
struct ProfilePage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    tenant: String,
    name: String,
    versions: Vec<(i32, String)>,
    left: i32,
    right: i32,
    diff: Vec<DiffLine>,
}

#[derive(Deserialize)]
pub struct CompareQuery {
    a: Option<i32>,
    b: Option<i32>,
}

/// A profile's versions; the latest beside the one before it, or `a` beside `b`.
pub async fn show(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<CompareQuery>,
) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        let versions = profiles::versions(&state.pool, tenant.id, &name).await.map_err(store_problem)?;
        let latest = versions.first().map(|v| v.0).ok_or_else(|| Problem::not_found(format!("profile {name}")))?;
        let right = q.b.unwrap_or(latest);
        let left = q.a.unwrap_or((right - 1).max(1));
        let text = |v: i32| {
            let (pool, name) = (&state.pool, &name);
            async move {
                profiles::version(pool, tenant.id, name, v).await.map(|p| p.profile.to_yaml()).map_err(store_problem)
            }
        };
        let diff = side_by_side(&text(left).await?, &text(right).await?);
        let versions = versions.iter().map(|(v, at)| (*v, super::pages::local(*at, &tenant.timezone))).collect();
        Ok((versions, left, right, diff))
    }
    .await;
    match result {
        Ok((versions, left, right, diff)) => {
            ProfilePage { t, viewer: Some(viewer), tenant: slug, name, versions, left, right, diff }.into_response()
        }
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_faces_its_replacement_and_unchanged_lines_stay_aligned() {
        let lines = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n");
        let kinds: Vec<_> = lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["same", "changed", "same", "added"]);
        assert_eq!((lines[1].left.as_str(), lines[1].right.as_str()), ("b", "B"));
        assert_eq!((lines[3].left_no.as_str(), lines[3].right_no.as_str()), ("", "4"));
    }
}
