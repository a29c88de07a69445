package azure

import (
	"errors"
	"fmt"
	"net/http"

	"llmproxy/router"
)

// mapError adjusts the few Azure error codes whose meaning differs from
// OpenAI's; the rest of the mapping is providers/openai's, since Azure's
// error body is OpenAI's {"error":{"message","type","param","code"}}.
//
//   - 404 DeploymentNotFound means our config names a deployment the
//     resource lacks: a provider fault (502, try the next deployment), not
//     the client's request.
//   - 400 content_filter (the prompt tripped Azure's content filter) keeps
//     its status, message and code, as openai already does for any 4xx.
func (c *Client) mapError(err error) error {
	var e *router.Error
	if !errors.As(err, &e) || e.Kind != router.KindInvalidRequest {
		return err
	}
	if e.Status == http.StatusNotFound && e.Code == "DeploymentNotFound" {
		return &router.Error{Kind: router.KindUpstream, Provider: c.name,
			Message: fmt.Sprintf("provider %q has no such deployment", c.name), Err: e}
	}
	return err
}
