//! Concurrent admin edits of one record: without a pinned revision both
//! land, one on top of the other (no lost update); with
//! `expected_revision`, the edit made from a stale read is refused with
//! ABORTED naming the record, and nothing of it is written.

mod common;

use common::{Fixture, admin, clients};
use toolgate_proto::v1;

#[tokio::test]
async fn a_stale_expected_revision_is_aborted_and_unpinned_edits_never_lose_each_other() {
    let fx = Fixture::start().await;
    let mut a = fx.admin.clone();
    let mut b = clients(fx.daemon.grpc_addr, admin(&fx.admin_token)).await;
    let created = a
        .toolsets
        .create_toolset(v1::CreateToolsetRequest {
            name: "Support".into(),
            description: "first".into(),
            tool_ids: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    assert_eq!(created.revision, 1);

    // Both admins read revision 1; A writes first.
    let renamed = a
        .toolsets
        .update_toolset(v1::UpdateToolsetRequest {
            id: created.id.clone(),
            name: Some("Support desk".into()),
            description: None,
            expected_revision: Some(1),
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    assert_eq!(renamed.revision, 2);
    let stale = b
        .toolsets
        .update_toolset(v1::UpdateToolsetRequest {
            id: created.id.clone(),
            name: None,
            description: Some("from a stale read".into()),
            expected_revision: Some(1),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    assert_eq!(
        stale.message(),
        format!(
            "toolset {} changed since you read it (revision 1, now 2); read it again and retry",
            created.id
        )
    );
    let now = b
        .toolsets
        .get_toolset(v1::GetToolsetRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    assert_eq!((now.revision, now.description.as_str()), (2, "first"));

    // Twenty unpinned edits at once, half through each client: every one
    // lands (one revision each), none overwrites another.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = created.id.clone();
        tasks.spawn(async move {
            c.toolsets
                .update_toolset(v1::UpdateToolsetRequest {
                    id,
                    name: None,
                    description: Some(format!("edit {i}")),
                    expected_revision: None,
                })
                .await
                .unwrap()
        });
    }
    tasks.join_all().await;
    let after = a
        .toolsets
        .get_toolset(v1::GetToolsetRequest { id: created.id })
        .await
        .unwrap()
        .into_inner()
        .toolset
        .unwrap();
    assert_eq!(after.revision, 22);

    // Access profiles: the same rule for grants.
    let profile = a
        .profiles
        .create_access_profile(v1::CreateAccessProfileRequest {
            name: "Support".into(),
            description: String::new(),
            toolset_ids: Vec::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    let mut users = Vec::new();
    for email in ["ada@example.com", "grace@example.com"] {
        users.push(
            a.users
                .create_user(v1::CreateUserRequest {
                    email: email.into(),
                    display_name: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap()
                .id,
        );
    }
    let (first, second) = tokio::join!(
        a.profiles.grant_user(v1::GrantUserRequest {
            profile_id: profile.id.clone(),
            user_id: users[0].clone(),
            expires_at: None,
            expected_revision: None,
        }),
        b.profiles.grant_user(v1::GrantUserRequest {
            profile_id: profile.id.clone(),
            user_id: users[1].clone(),
            expires_at: None,
            expected_revision: None,
        }),
    );
    first.unwrap();
    second.unwrap();
    let stale = a
        .profiles
        .revoke_user(v1::RevokeUserRequest {
            profile_id: profile.id.clone(),
            user_id: users[0].clone(),
            expected_revision: Some(profile.revision),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    let profile = a
        .profiles
        .get_access_profile(v1::GetAccessProfileRequest { id: profile.id })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert_eq!(profile.revision, 3);
    assert_eq!(
        profile.grants.len(),
        2,
        "both grants landed, the stale revoke did not"
    );
}
