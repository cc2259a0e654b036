package remote

import (
	"encoding/json"
	"fmt"

	"github.com/karapace/karapace/schema"
)

// ProtocolVersion is the remote protocol spoken by this package, sent on every request
// in the ProtocolHeader header.
const ProtocolVersion = 1

// ProtocolHeader carries ProtocolVersion on every request.
const ProtocolHeader = "X-Karapace-Protocol"

// VerifiesHeader is sent by the reference server on every response, with the value
// "blake3": it hashes every object and layer it receives and refuses a mismatch, so a
// client need not hash what it uploads. (The original server sends no such header.)
const VerifiesHeader = "X-Karapace-Verifies"

// UploadVerifier is an optional capability of a backend: UploadsVerified reports whether
// the remote is known to check uploaded objects and layers against their keys. Push
// hashes blobs itself on the way out unless it is.
type UploadVerifier interface {
	UploadsVerified() bool
}

// Kind is the kind of a blob in a remote store.
type Kind int

// The three blob kinds of protocol v1.
const (
	Object Kind = iota
	Layer
	Metadata
)

// Kinds lists every blob kind, in push order.
var Kinds = [...]Kind{Object, Layer, Metadata}

// String returns the kind's name as the original's Debug output spells it
// ("Object", "Layer", "Metadata"); the reference server also uses it as a directory name.
func (k Kind) String() string {
	switch k {
	case Object:
		return "Object"
	case Layer:
		return "Layer"
	case Metadata:
		return "Metadata"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Route returns the kind's URL path segment: "objects", "layers" or "metadata".
func (k Kind) Route() string {
	switch k {
	case Object:
		return "objects"
	case Layer:
		return "layers"
	case Metadata:
		return "metadata"
	}
	return ""
}

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool { return k == Object || k == Layer || k == Metadata }

// KindFromRoute parses a URL path segment ("objects", "layers", "metadata").
func KindFromRoute(s string) (Kind, bool) {
	switch s {
	case "objects":
		return Object, true
	case "layers":
		return Layer, true
	case "metadata":
		return Metadata, true
	}
	return 0, false
}

// KindFromName parses a kind's name ("Object", "Layer", "Metadata"), as used by the
// original server's canonical /blobs/{Kind}/{key} routes.
func KindFromName(s string) (Kind, bool) {
	switch s {
	case "Object":
		return Object, true
	case "Layer":
		return Layer, true
	case "Metadata":
		return Metadata, true
	}
	return 0, false
}

// ParseKey validates a blob key: 64 lowercase hex characters for every kind (objects and
// layers are keyed by their blake3 digest, metadata by the environment id). Nothing else
// may be used as a key, so no key can name a path outside a store.
func ParseKey(key string) (schema.Digest, error) {
	d, err := schema.ParseDigest(key)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return d, nil
}

// ContentAddressed reports whether blobs of kind k are keyed by the blake3 digest of their
// bytes (objects and layers) rather than by an environment id (metadata).
func (k Kind) ContentAddressed() bool { return k == Object || k == Layer }

// CheckMetadataBlob accepts a metadata blob that is a JSON object naming its own key as
// env_id. The rest is the receiver's business (a client checks the checksum on pull).
func CheckMetadataBlob(b []byte, key string) error {
	var m struct {
		EnvID *string `json:"env_id"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: metadata is not a JSON object: %v", ErrProtocol, err)
	}
	if m.EnvID == nil || *m.EnvID != key {
		return fmt.Errorf("%w: metadata env_id does not match its key %s", ErrProtocol, key)
	}
	return nil
}
