package main

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// apiError is OpenAI's error body.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// toRouterError maps any error, including fiber's own, to a *router.Error.
func toRouterError(err error) *router.Error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusNotFound:
			return &router.Error{Kind: router.KindNotFound, Message: "Unknown request URL. Please check the URL for typos, or see the docs at https://platform.openai.com/docs/api-reference/.", Code: "unknown_url"}
		case fiber.StatusMethodNotAllowed:
			return &router.Error{Kind: router.KindInvalidRequest, Status: fe.Code, Message: "Method not allowed for this URL.", Code: "method_not_allowed"}
		case fiber.StatusRequestEntityTooLarge:
			return &router.Error{Kind: router.KindInvalidRequest, Status: fe.Code, Message: "Request body is too large.", Code: "request_too_large"}
		default:
			if fe.Code >= 400 && fe.Code < 500 {
				return &router.Error{Kind: router.KindInvalidRequest, Status: fe.Code, Message: fe.Message}
			}
			return &router.Error{Kind: router.KindInternal, Message: "internal error", Err: err}
		}
	}
	return router.AsError(err)
}

// errorBody is the OpenAI-shaped JSON for e. Internal errors never show
// their cause.
func errorBody(e *router.Error) apiError {
	msg := e.Message
	if e.Kind == router.KindInternal || msg == "" {
		msg = "internal error"
	}
	return apiError{Error: apiErrorBody{Message: msg, Type: e.TypeName(), Param: nullable(e.Param), Code: nullable(e.Code)}}
}

// setErrorHeaders adds the headers the official SDKs read to decide on a
// retry.
func setErrorHeaders(c *fiber.Ctx, e *router.Error) {
	if e.RetryAfter > 0 {
		c.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
		c.Set("retry-after-ms", strconv.FormatInt(e.RetryAfter.Milliseconds(), 10))
	} else if e.StatusCode() == fiber.StatusTooManyRequests {
		c.Set("Retry-After", "1")
	}
	if !e.ClientRetryable() {
		c.Set("x-should-retry", "false")
	}
}

// errorHandler is the one place errors become HTTP responses: fiber calls
// it for handler errors and for its own (404, 405, 408, 431, bad requests).
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	e := toRouterError(err)
	if len(c.Response().Header.Peek(fiber.HeaderXRequestID)) == 0 {
		c.Set(fiber.HeaderXRequestID, s.requestID(c))
	}
	status := e.StatusCode()
	if e.Kind == router.KindCanceled {
		status = 499 // nginx's "client closed request"; nobody reads it
	}
	setErrorHeaders(c, e)
	c.Locals(localsError, e)
	err = c.Status(status).JSON(errorBody(e))
	if c.Locals(localsAccess) == nil && status < 500 {
		// fasthttp refused the request before the middlewares ran (read
		// timeout, headers too large): this is its only access line.
		// Its 5xx are broken client connections, with nobody to answer.
		s.finish(&reqRecord{route: routeOf(c.Path()), start: time.Now(), status: status, err: e,
			requestID: string(c.Response().Header.Peek(fiber.HeaderXRequestID))})
	}
	return err
}
