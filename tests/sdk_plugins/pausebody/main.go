// pausebody: pauses at the request headers while it calls a service; the body keeps arriving and
// is buffered for it (replaced by "pausebody saw N bytes") and held until the call's callback, which
// adds x-check-status and resumes. config.limit > 0 raises the request buffer limit first
// (SetRequestBodyBufferLimit).
package main

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("pausebody", wrapper.ParseConfig(parseConfig),
		wrapper.ProcessRequestHeaders(onRequestHeaders), wrapper.ProcessRequestBody(onRequestBody))
}

type config struct {
	client wrapper.HttpClient
	limit  uint32
}

func parseConfig(json gjson.Result, c *config) error {
	c.client = wrapper.NewClusterClient(wrapper.FQDNCluster{
		FQDN: json.Get("host").String(), Port: json.Get("port").Int()})
	c.limit = uint32(json.Get("limit").Uint())
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	if c.limit > 0 {
		ctx.SetRequestBodyBufferLimit(c.limit)
	}
	_ = proxywasm.RemoveHttpRequestHeader("content-length")
	err := c.client.Get("/check", nil, func(status int, _ http.Header, _ []byte) {
		_ = proxywasm.AddHttpRequestHeader("x-check-status", strconv.Itoa(status))
		ctx.SetContext("checked", true)
		_ = proxywasm.ResumeHttpRequest()
	}, 5000)
	if err != nil {
		proxywasm.LogErrorf("pausebody: call failed: %v", err)
		return types.ActionContinue
	}
	return types.HeaderStopIteration
}

func onRequestBody(ctx wrapper.HttpContext, c config, body []byte) types.Action {
	_ = proxywasm.ReplaceHttpRequestBody([]byte(fmt.Sprintf("pausebody saw %d bytes", len(body))))
	if ctx.GetContext("checked") == nil {
		return types.ActionPause // held (buffered) until the callback resumes the request
	}
	return types.ActionContinue
}
