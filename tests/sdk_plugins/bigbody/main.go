// bigbody: raises the request buffer limit (SetRequestBodyBufferLimit, config.limit bytes) and
// buffers the whole body, then replaces it with "bigbody saw N bytes".
package main

import (
	"fmt"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("bigbody", wrapper.ParseConfig(parseConfig),
		wrapper.ProcessRequestHeaders(onRequestHeaders), wrapper.ProcessRequestBody(onRequestBody))
}

type config struct{ limit uint32 }

func parseConfig(json gjson.Result, c *config) error {
	c.limit = uint32(json.Get("limit").Uint())
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	if c.limit > 0 {
		ctx.SetRequestBodyBufferLimit(c.limit)
	}
	_ = proxywasm.RemoveHttpRequestHeader("content-length")
	return types.ActionContinue
}

func onRequestBody(ctx wrapper.HttpContext, c config, body []byte) types.Action {
	_ = proxywasm.ReplaceHttpRequestBody([]byte(fmt.Sprintf("bigbody saw %d bytes", len(body))))
	return types.ActionContinue
}
