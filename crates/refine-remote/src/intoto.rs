//! The OCI referrer manifests that attach a provenance statement, or a signed envelope of it,
//! to its artifact (image-spec 1.1 `subject`).

use std::collections::BTreeMap;

use refine_attest::{DSSE_MEDIA_TYPE, INTOTO_MEDIA_TYPE, SLSA_PROVENANCE_V1};
use refine_store::{Descriptor, Digest, MANIFEST_MEDIA_TYPE, Manifest, annotations};

/// What a referrer carries: its one layer's media type, which is also the referrer's
/// artifact type (what `GET /v2/…/referrers?artifactType=` filters on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// The in-toto statement, unsigned (`application/vnd.in-toto+json`).
    Statement,
    /// A DSSE envelope around the statement (`application/vnd.dsse.envelope.v1+json`).
    SignedStatement,
}

impl Attachment {
    pub fn media_type(self) -> &'static str {
        match self {
            Attachment::Statement => INTOTO_MEDIA_TYPE,
            Attachment::SignedStatement => DSSE_MEDIA_TYPE,
        }
    }
}

/// The referrer manifest attaching the blob (`layer`, `size`) to `subject`.
pub fn referrer_manifest(
    what: Attachment,
    subject: (&Digest, u64),
    layer: (&Digest, u64),
    key: &str,
) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(what.media_type().into()),
        config: Descriptor::empty(),
        layers: vec![Descriptor {
            media_type: what.media_type().into(),
            digest: *layer.0,
            size: layer.1,
            artifact_type: None,
            annotations: None,
        }],
        subject: Some(Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: *subject.0,
            size: subject.1,
            artifact_type: None,
            annotations: None,
        }),
        annotations: Some(BTreeMap::from([
            (
                "in-toto.io/predicate-type".to_string(),
                SLSA_PROVENANCE_V1.to_string(),
            ),
            (annotations::KEY.to_string(), key.to_string()),
        ])),
    }
}
