package remote

import (
	"errors"
	"fmt"
	"net/http"
)

// Error classes. Every error from this package wraps one of them (or an error from the
// standard library, such as context.Canceled); inspect them with errors.Is.
var (
	// ErrNotFound: the blob, registry or registry entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrIntegrity: bytes do not hash to their key, or a metadata checksum is wrong.
	ErrIntegrity = errors.New("integrity failure")
	// ErrInvalidKey: a key is not 64 lowercase hex characters.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidRef: a registry reference (name@tag) is malformed.
	ErrInvalidRef = errors.New("invalid reference")
	// ErrUnauthorized: the server refused the token (HTTP 401 or 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrConflict: a conditional registry update lost a race (HTTP 412).
	ErrConflict = errors.New("conflict")
	// ErrConfig: the remote configuration is missing or malformed.
	ErrConfig = errors.New("remote config error")
	// ErrProtocol: the server answered something protocol v1 does not allow.
	ErrProtocol = errors.New("protocol error")
)

// IntegrityError says which blob failed verification. It matches ErrIntegrity.
type IntegrityError struct {
	Key      string // "metadata:<id>" for metadata, else the blob key
	Expected string
	Actual   string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("integrity failure for '%s': expected %s, got %s", e.Key, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrIntegrity) true.
func (e *IntegrityError) Is(target error) bool { return target == ErrIntegrity }

// HTTPError is a response with a status other than 2xx. It carries the status and the
// server's message and matches the class of its status: ErrNotFound for 404,
// ErrUnauthorized for 401 and 403, ErrConflict for 412.
type HTTPError struct {
	Method  string
	URL     string
	Status  int
	Message string
	Class   string // the server's ErrorClassHeader, if any
}

func (e *HTTPError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("HTTP %d for %s %s: %s", e.Status, e.Method, e.URL, msg)
}

// ErrorClassHeader names the class of an error response from the reference server, so
// the client can map it back: "integrity" (a body did not match its key), "invalid-key",
// "conflict" (a conditional registry write lost).
const ErrorClassHeader = "X-Karapace-Error"

// Is maps the status (and the server's error class, when it sent one) to an error class.
func (e *HTTPError) Is(target error) bool {
	switch e.Class {
	case "integrity":
		return target == ErrIntegrity
	case "invalid-key":
		return target == ErrInvalidKey
	}
	switch e.Status {
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return target == ErrUnauthorized
	case http.StatusPreconditionFailed:
		return target == ErrConflict
	}
	return false
}
