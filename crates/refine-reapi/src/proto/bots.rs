//! `google.devtools.remoteworkers.v1test2` (googleapis `bots.proto` and `worker.proto`,
//! Apache-2.0): the Remote Workers API that BuildGrid's bots speak. Written out with prost's
//! derives because no published crate carries it; the field numbers are the proto's. The API is
//! frozen at `v1test2`, so this does not drift.

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use tonic::codegen::http;

#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub bot_id: String,
    #[prost(enumeration = "BotStatus", tag = "3")]
    pub status: i32,
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(string, tag = "7")]
    pub id: String,
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
    #[prost(enumeration = "LeaseState", tag = "2")]
    pub state: i32,
    #[prost(message, optional, tag = "3")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "4")]
    pub requirements: Option<Worker>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<Property>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
}

/// `Worker.Property`, `Worker.Config` and `Device.Property`: all a key and a value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Property {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
    #[prost(message, optional, tag = "3")]
    pub update_mask: Option<FieldMask>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BotStatus {
    Unspecified = 0,
    Ok = 1,
    Unhealthy = 2,
    HostRebooting = 3,
    BotTerminating = 4,
    Initializing = 5,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum LeaseState {
    Unspecified = 0,
    Pending = 1,
    Active = 2,
    Completed = 4,
    Cancelled = 5,
}

/// A client of the `Bots` service.
#[derive(Clone)]
pub struct BotsClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> BotsClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        BotsClient {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    async fn unary<Req, Resp>(
        &mut self,
        req: Req,
        path: &'static str,
        deadline: Option<std::time::Duration>,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.inner.ready().await.map_err(|e| {
            tonic::Status::unavailable(format!("Service was not ready: {}", e.into()))
        })?;
        let codec = tonic_prost::ProstCodec::default();
        let path = http::uri::PathAndQuery::from_static(path);
        let mut request = tonic::Request::new(req);
        if let Some(d) = deadline {
            // Sent as `grpc-timeout`: a long-polling server answers before it.
            request.set_timeout(d);
        }
        let response = self.inner.unary(request, path, codec).await?;
        Ok(response.into_inner())
    }

    /// Creates a session; like an update, the server may hold the call until work comes or
    /// `deadline` nears.
    pub async fn create_bot_session(
        &mut self,
        req: CreateBotSessionRequest,
        deadline: std::time::Duration,
    ) -> Result<BotSession, tonic::Status> {
        self.unary(
            req,
            "/google.devtools.remoteworkers.v1test2.Bots/CreateBotSession",
            Some(deadline),
        )
        .await
    }

    /// Updates the session; the server may hold the call open until work comes or
    /// `deadline` nears (long polling).
    pub async fn update_bot_session(
        &mut self,
        req: UpdateBotSessionRequest,
        deadline: std::time::Duration,
    ) -> Result<BotSession, tonic::Status> {
        self.unary(
            req,
            "/google.devtools.remoteworkers.v1test2.Bots/UpdateBotSession",
            Some(deadline),
        )
        .await
    }
}
