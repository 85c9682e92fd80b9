// noreroute: rewrites :path to config.path; with config.disable it first calls DisableReroute(),
// so on Higress the request keeps the route chosen before the plugin.
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("noreroute", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	disable bool
	path    string
}

func parseConfig(json gjson.Result, c *config) error {
	c.disable = json.Get("disable").Bool()
	c.path = json.Get("path").String()
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	if c.disable {
		ctx.DisableReroute()
	}
	_ = proxywasm.ReplaceHttpRequestHeader(":path", c.path)
	return types.ActionContinue
}
