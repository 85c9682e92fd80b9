// ipallow: answers 403 unless property source.address is in config.allow (CIDRs); adds
// x-source-address with the address it saw.
package main

import (
	"net"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
)

func main() {}

func init() {
	wrapper.SetCtx("ipallow", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct{ allow []*net.IPNet }

func parseConfig(json gjson.Result, c *config) error {
	for _, item := range json.Get("allow").Array() {
		_, network, err := net.ParseCIDR(item.String())
		if err != nil {
			return err
		}
		c.allow = append(c.allow, network)
	}
	return nil
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	raw, err := proxywasm.GetProperty([]string{"source", "address"})
	if err != nil {
		_ = proxywasm.SendHttpResponse(500, nil, []byte("no source.address"), -1)
		return types.ActionPause
	}
	host, _, splitErr := net.SplitHostPort(string(raw))
	if splitErr != nil {
		host = string(raw)
	}
	ip := net.ParseIP(host)
	for _, network := range c.allow {
		if ip != nil && network.Contains(ip) {
			_ = proxywasm.ReplaceHttpRequestHeader("x-source-address", host)
			return types.ActionContinue
		}
	}
	_ = proxywasm.SendHttpResponse(403, [][2]string{{"x-source-address", host}}, []byte("ip not allowed"), -1)
	return types.ActionPause
}
