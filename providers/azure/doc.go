// Package azure is the adapter for Azure OpenAI. It sits at the far end of
// the request path, behind router.Router. Azure speaks OpenAI's wire format
// with three differences, and only those live here: the deployment (the
// route's upstream model) and api-version go in the URL, the key goes in an
// "api-key" header, and streams may open with a metadata-only chunk carrying
// prompt_filter_results. Everything else (request pass-through, SSE
// decoding, timeouts, error mapping) is providers/openai's.
package azure
