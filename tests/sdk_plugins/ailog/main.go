// ailog: writes config.value into the ai_log filter state (wasm-go user attributes, as the AI
// plugins do) and counts an AI-statistics style metric named after route_name / cluster_name.
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
	wrapper.SetCtx("ailog", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	value string
	model string
}

var counters = map[string]proxywasm.MetricCounter{}

func parseConfig(json gjson.Result, c *config) error {
	c.value = json.Get("value").String()
	c.model = json.Get("model").String()
	return nil
}

func property(name string) string {
	raw, err := proxywasm.GetProperty([]string{name})
	if err != nil {
		return "-"
	}
	return string(raw)
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	ctx.SetUserAttribute("hlocal_test", c.value)
	_ = ctx.WriteUserAttributeToLogWithKey(wrapper.AILogKey) // as ai-statistics does
	name := fmt.Sprintf("route.%s.upstream.%s.model.%s.consumer.none.metric.input_token",
		property("route_name"), property("cluster_name"), c.model)
	counter, ok := counters[name]
	if !ok {
		counter = proxywasm.DefineCounterMetric(name)
		counters[name] = counter
	}
	counter.Increment(7)
	return types.ActionContinue
}
