package abi

import (
	"encoding/binary"
	"strings"
)

// Log writes msg to the host log at level.
func Log(level LogLevel, msg string) {
	p, n := strPtr(msg)
	hostLog(uint32(level), p, n)
}

// GetHeader returns the value of key in map m.
func GetHeader(m MapType, key string) (string, error) {
	kp, kn := strPtr(key)
	var addr, size uint32
	if st := Status(hostGetHeaderMapValue(uint32(m), kp, kn, &addr, &size)); st != StatusOK {
		return "", st
	}
	return string(take(addr, size)), nil
}

func AddHeader(m MapType, key, value string) error {
	kp, kn := strPtr(key)
	vp, vn := strPtr(value)
	return Status(hostAddHeaderMapValue(uint32(m), kp, kn, vp, vn)).err()
}

func ReplaceHeader(m MapType, key, value string) error {
	kp, kn := strPtr(key)
	vp, vn := strPtr(value)
	return Status(hostReplaceHeaderMapValue(uint32(m), kp, kn, vp, vn)).err()
}

func RemoveHeader(m MapType, key string) error {
	kp, kn := strPtr(key)
	return Status(hostRemoveHeaderMapValue(uint32(m), kp, kn)).err()
}

// GetHeaders returns all pairs of map m in order.
func GetHeaders(m MapType) ([][2]string, error) {
	var addr, size uint32
	if st := Status(hostGetHeaderMapPairs(uint32(m), &addr, &size)); st != StatusOK {
		return nil, st
	}
	return decodePairs(take(addr, size)), nil
}

// GetBuffer returns up to maxSize bytes from the start of buffer b.
func GetBuffer(b BufferType, maxSize int) ([]byte, error) {
	var addr, size uint32
	if st := Status(hostGetBufferBytes(uint32(b), 0, uint32(maxSize), &addr, &size)); st != StatusOK {
		return nil, st
	}
	return take(addr, size), nil
}

// SendLocalResponse answers the request from the plugin without reaching upstream.
func SendLocalResponse(status int, body string, headers [][2]string) error {
	dp, dn := strPtr("")
	bp, bn := strPtr(body)
	hp, hn := bytesPtr(encodePairs(headers))
	return Status(hostSendLocalResponse(uint32(status), dp, dn, bp, bn, hp, hn, -1)).err()
}

// GetProperty reads the property at path (segments are joined with NUL).
func GetProperty(path ...string) ([]byte, error) {
	pp, pn := strPtr(strings.Join(path, "\x00"))
	var addr, size uint32
	if st := Status(hostGetProperty(pp, pn, &addr, &size)); st != StatusOK {
		return nil, st
	}
	return take(addr, size), nil
}

func SetProperty(value []byte, path ...string) error {
	pp, pn := strPtr(strings.Join(path, "\x00"))
	vp, vn := bytesPtr(value)
	return Status(hostSetProperty(pp, pn, vp, vn)).err()
}

// HttpCall dispatches a request to cluster; cb runs on the calling stream's context.
func HttpCall(cluster string, headers [][2]string, body []byte, timeoutMs uint32,
	cb func(numHeaders, bodySize, numTrailers int)) (uint32, error) {
	cp, cn := strPtr(cluster)
	hp, hn := bytesPtr(encodePairs(headers))
	bp, bn := bytesPtr(body)
	tp, tn := bytesPtr(encodePairs(nil))
	var token uint32
	st := Status(hostHttpCall(cp, cn, hp, hn, bp, bn, tp, tn, timeoutMs, &token))
	if st != StatusOK {
		return 0, st
	}
	callouts[token] = callout{caller: activeContext, cb: cb}
	return token, nil
}

// ContinueStream resumes a stream paused by StopIteration.
func ContinueStream(s StreamType) error {
	return Status(hostContinueStream(uint32(s))).err()
}

// Pair maps are serialized as: count, then (key length, value length) per pair,
// then each key and value followed by a NUL byte; integers are little-endian u32.
func encodePairs(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	out := make([]byte, 4+8*len(pairs), size)
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	for i, p := range pairs {
		binary.LittleEndian.PutUint32(out[4+8*i:], uint32(len(p[0])))
		binary.LittleEndian.PutUint32(out[8+8*i:], uint32(len(p[1])))
	}
	for _, p := range pairs {
		out = append(out, p[0]...)
		out = append(out, 0)
		out = append(out, p[1]...)
		out = append(out, 0)
	}
	return out
}

func decodePairs(buf []byte) [][2]string {
	if len(buf) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(buf))
	if 4+8*n > len(buf) {
		return nil
	}
	pairs := make([][2]string, 0, n)
	data := 4 + 8*n
	for i := 0; i < n; i++ {
		kn := int(binary.LittleEndian.Uint32(buf[4+8*i:]))
		vn := int(binary.LittleEndian.Uint32(buf[8+8*i:]))
		if data+kn+1+vn+1 > len(buf) {
			return pairs
		}
		k := string(buf[data : data+kn])
		data += kn + 1
		v := string(buf[data : data+vn])
		data += vn + 1
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs
}
