// Package client is the Go client of memcell's REST API.
//
// [Client] speaks the root package's types: it sends and receives
// [memcell.MemCell] values, converting them through the API representation
// ([memcell.EncodeAPI], [memcell.DecodeAPI]) so that nothing is lost, extra
// fields included. Its errors are [*APIError] values that wrap the root
// package's sentinel errors ([memcell.ErrNotFound], [memcell.ErrConflict],
// [memcell.ErrInvalid], [memcell.ErrUnavailable]) and carry the API's code
// and message:
//
//	c, err := client.New("http://127.0.0.1:8080", client.Token(token))
//	if err != nil {
//		return err
//	}
//	stored, _, err := c.Append(ctx, &memcell.MemCell{Timestamp: time.Now()})
//	if err != nil {
//		return err
//	}
//	m, _, err := c.Get(ctx, stored.ID)
//	if errors.Is(err, memcell.ErrNotFound) {
//		// deleted meanwhile
//	}
//
// The rest of the API (admin routes, jobs, partial batch reads) is reached
// through the client generated from httpapi/openapi.yaml by oapi-codegen
// ([APIClient], [ClientWithResponses], the models), which [Client.API]
// returns ready to use. client.gen.go is generated: edit the spec and run
// go generate ./client/ (TestGeneratedCodeIsCurrent fails until it is run).
package client
