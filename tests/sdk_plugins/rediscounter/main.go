// rediscounter: a per-key request limit with its counter in Redis (wasm-go's NewRedisClusterClient).
//
// Config: {"redis": {"host": H, "port": P, "username": U, "password": W, "timeout": MS},
//          "limit": N, "window": SECONDS, "key_header": NAME}
// Each request INCRs "hlocal:count:<key>" (EXPIREs it on the first hit), answers 429 past the limit,
// else SETs and GETs "hlocal:last:<key>" and passes the count and the stored path upstream as headers.
// A request with `x-redis-fail: 1` sends a command Redis rejects: the Redis error answers 503.
package main

import (
	"fmt"
	"strconv"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/higress-group/wasm-go/pkg/wrapper"
	"github.com/tidwall/gjson"
	"github.com/tidwall/resp"
)

func main() {}

func init() {
	wrapper.SetCtx("rediscounter", wrapper.ParseConfig(parseConfig), wrapper.ProcessRequestHeaders(onRequestHeaders))
}

type config struct {
	client    wrapper.RedisClient
	limit     int64
	window    int
	keyHeader string
}

func parseConfig(json gjson.Result, c *config) error {
	redis := json.Get("redis")
	c.client = wrapper.NewRedisClusterClient(wrapper.FQDNCluster{FQDN: redis.Get("host").String(), Port: redis.Get("port").Int()})
	c.limit = json.Get("limit").Int()
	c.window = int(json.Get("window").Int())
	c.keyHeader = json.Get("key_header").String()
	timeout := redis.Get("timeout").Int()
	if timeout == 0 {
		timeout = 1000
	}
	return c.client.Init(redis.Get("username").String(), redis.Get("password").String(), timeout)
}

func deny(status uint32, reason string) {
	proxywasm.SendHttpResponse(status, [][2]string{{"x-rediscounter", reason}}, []byte(reason+"\n"), -1)
}

func onRequestHeaders(ctx wrapper.HttpContext, c config) types.Action {
	key, _ := proxywasm.GetHttpRequestHeader(c.keyHeader)
	if key == "" {
		key = "anonymous"
	}
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	if fail, _ := proxywasm.GetHttpRequestHeader("x-redis-fail"); fail != "" {
		err := c.client.Command([]interface{}{"hlocal-no-such-command", key}, func(r resp.Value) {
			if r.Error() != nil {
				deny(503, "redis error: "+r.Error().Error())
				return
			}
			deny(500, "redis accepted an unknown command")
		})
		if err != nil {
			deny(500, "redis call failed: "+err.Error())
			return types.ActionContinue
		}
		return types.HeaderStopAllIterationAndWatermark
	}
	countKey := "hlocal:count:" + key
	err := c.client.Incr(countKey, func(r resp.Value) {
		if r.Error() != nil {
			deny(503, "redis error: "+r.Error().Error())
			return
		}
		count := int64(r.Integer())
		if count == 1 && c.window > 0 {
			_ = c.client.Expire(countKey, c.window, nil)
		}
		if count > c.limit {
			deny(429, fmt.Sprintf("limit %d reached (%d)", c.limit, count))
			return
		}
		lastKey := "hlocal:last:" + key
		setErr := c.client.Set(lastKey, path, func(r resp.Value) {
			if r.Error() != nil {
				deny(503, "redis error: "+r.Error().Error())
				return
			}
			getErr := c.client.Get(lastKey, func(g resp.Value) {
				proxywasm.AddHttpRequestHeader("x-redis-count", strconv.FormatInt(count, 10))
				proxywasm.AddHttpRequestHeader("x-redis-last", g.String())
				proxywasm.ResumeHttpRequest()
			})
			if getErr != nil {
				deny(500, "redis get failed: "+getErr.Error())
			}
		})
		if setErr != nil {
			deny(500, "redis set failed: "+setErr.Error())
		}
	})
	if err != nil {
		deny(500, "redis call failed: "+err.Error())
		return types.ActionContinue
	}
	return types.HeaderStopAllIterationAndWatermark
}
