// routematch: adds x-rule (config.tag: the global value or a `_match_route_` rule's) and x-route
// (the route_name property it sees), to show which route wasm-go's rule matcher saw.
package main

import (
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("routematch", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct{ tag string }

func parseConfig(json gjson.Result, c *config) error {
	c.tag = json.Get("tag").String()
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	route, err := proxywasm.GetProperty([]string{"route_name"})
	if err != nil {
		route = []byte("<none>")
	}
	_ = proxywasm.ReplaceHttpRequestHeader("x-rule", c.tag)
	_ = proxywasm.ReplaceHttpRequestHeader("x-route", string(route))
	return types.ActionContinue
}
