//! `ConnectionService`: users' Salesforce connections.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use toolgate_proto::v1;
use v1::connection_service_server::ConnectionService;

use super::auth::actor;
use super::convert::{opt_timestamp, timestamp};
use super::error::{ControlError, require};
use super::validate;
use crate::model::Connection;
use crate::oauth::OAuth;
use crate::store::Store;

/// The service: the store to list from and the OAuth client that revokes.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    store: Arc<Store>,
    oauth: Arc<OAuth>,
}

impl Connections {
    /// Builds the service.
    pub(crate) fn new(store: Arc<Store>, oauth: Arc<OAuth>) -> Self {
        Self { store, oauth }
    }
}

fn to_proto(c: &Connection) -> v1::Connection {
    v1::Connection {
        id: c.id.clone(),
        user_id: c.user_id.clone(),
        server_id: c.server_id.clone(),
        instance_url: c.instance_url.clone(),
        salesforce_user_id: c.salesforce_user_id.clone(),
        salesforce_org_id: c.salesforce_org_id.clone(),
        salesforce_username: c.salesforce_username.clone(),
        scopes: c.scopes.clone(),
        connected_at: Some(timestamp(c.connected_at)),
        refreshed_at: opt_timestamp(c.refreshed_at),
    }
}

#[tonic::async_trait]
impl ConnectionService for Connections {
    async fn list_connections(
        &self,
        request: Request<v1::ListConnectionsRequest>,
    ) -> Result<Response<v1::ListConnectionsResponse>, Status> {
        let req = request.into_inner();
        let mut connections: Vec<Connection> = self
            .store
            .list::<Connection>()
            .await
            .map_err(ControlError::from)?
            .into_iter()
            .filter(|c| req.user_id.is_empty() || c.user_id == req.user_id)
            .filter(|c| req.server_id.is_empty() || c.server_id == req.server_id)
            .collect();
        connections.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Response::new(v1::ListConnectionsResponse {
            connections: connections.iter().map(to_proto).collect(),
        }))
    }

    async fn delete_connection(
        &self,
        request: Request<v1::DeleteConnectionRequest>,
    ) -> Result<Response<v1::DeleteConnectionResponse>, Status> {
        let actor = actor(&request);
        let id = validate::id("id", &request.get_ref().id)?;
        let connection = require::<Connection>(&self.store.reader(), id).await?;
        let revoked = self
            .oauth
            .disconnect(&connection, &actor)
            .await
            .map_err(ControlError::from)?;
        Ok(Response::new(v1::DeleteConnectionResponse {
            revoked_at_salesforce: revoked,
        }))
    }
}
