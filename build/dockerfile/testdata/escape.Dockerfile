# escape=`
FROM busybox
RUN dir c:\ `
    && echo backtick-continued
ENV PATH=C:\windows\system32
