// rerouter: rewrites :path to config.path (no DisableReroute), so Envoy picks the route again.
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("rerouter", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct{ path string }

func parseConfig(json gjson.Result, c *config) error {
	c.path = json.Get("path").String()
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	if c.path != "" {
		_ = proxywasm.ReplaceHttpRequestHeader(":path", c.path)
	}
	return types.ActionContinue
}
