package mongostore

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/memcell/memcell"
)

// TestMapErrMaxTimeMS checks that the server's MaxTimeMSExpired, the
// maxTimeMS a context's deadline set running out on the server, reads as
// that deadline passing: unavailable, and context.DeadlineExceeded.
func TestMapErrMaxTimeMS(t *testing.T) {
	server := mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired", Message: "operation exceeded time limit"}
	err := mapErr(server)
	if !errors.Is(err, memcell.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("mapErr(MaxTimeMSExpired) = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	other := mongo.CommandError{Code: 6, Name: "HostUnreachable", Labels: []string{"NetworkError"}}
	if err := mapErr(other); !errors.Is(err, memcell.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("mapErr(HostUnreachable) = %v, want ErrUnavailable only", err)
	}
}
